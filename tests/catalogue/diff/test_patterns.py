"""Pattern languages: JSON Schema patterns search, so anchors matter."""

import pytest

from gateway.catalogue.diff._patterns import pattern_shift


@pytest.mark.parametrize(
    ("old", "new", "shift"),
    [
        ("^[0-9a-f]{1,15}$", "^[0-9a-f]{1,8}$", "narrowed"),
        ("^[0-9a-f]{1,8}$", "^[0-9a-f]{1,15}$", "widened"),
        ("abc", "^abc$", "narrowed"),  # unanchored accepts any string containing abc
        ("^abc", "abc", "widened"),
        ("^[a-z0-9][a-z0-9._-]{0,63}$", "^[a-z][a-z0-9._-]{0,63}$", "narrowed"),  # dash in class
        ("^[-a]+$", "^[a-]+$", None),  # the same strings: no shift either way
        ("^x$", "^y$", "changed"),
        ("^a|b$", "^a$", "changed"),  # anchors on branches only: not modelled
        (r"^(a)\1$", "^aa$", "changed"),  # back reference: not a regular language
        (r"^\p{L}$", "^a$", "changed"),  # Unicode property: not modelled
        (r"^[0-9]{3}$", r"^\d{3}$", None),  # ECMA-262 (JSON Schema) \d is [0-9]
    ],
)
def test_pattern_shift(old, new, shift):
    assert pattern_shift(old, new) == shift

from __future__ import annotations

from apis._shared.etag import etag_of, matches


def test_if_none_match_uses_weak_comparison_over_a_list() -> None:
    tag = etag_of(b'{"a":1}')
    assert tag.startswith('"') and len(tag) == 34
    assert matches(tag, tag)
    assert matches(f'"other", W/{tag}', tag)
    assert matches("*", tag)
    assert not matches('"other"', tag)
    assert etag_of(b'{"a":2}') != tag

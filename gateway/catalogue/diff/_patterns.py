"""Does a rewritten `pattern` accept more, less, or other strings than before?

JSON Schema patterns are unanchored searches, so `^` and `$` at the ends decide
whether the language is `p` or `.*p.*`. The languages are compared as finite
automata (interegular); a pattern it cannot model (lookarounds, back
references, Unicode properties) gives "changed", which both directions treat
as breaking.
"""

from __future__ import annotations

from functools import lru_cache

import interegular
from interegular.fsm import FSM, Alphabet
from interegular.patterns import Pattern, REFlags

from gateway.catalogue.diff._model import Shift


def pattern_shift(old: str, new: str) -> Shift | None:
    """How NEW's language relates to OLD's; None when they are the same."""
    a, b = _pattern(old), _pattern(new)
    if a is None or b is None:
        return "changed"
    alphabet = Alphabet.union(a.get_alphabet(REFlags(0)), b.get_alphabet(REFlags(0)))[0]
    fa: FSM = a.to_fsm(alphabet, (0, 0))
    fb: FSM = b.to_fsm(alphabet, (0, 0))
    wider, narrower = fa.issubset(fb), fb.issubset(fa)
    if wider or narrower:
        return None if wider and narrower else "widened" if wider else "narrowed"
    return "changed"


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> Pattern | None:
    start, core, end = _split_anchors(pattern)
    if core is None:
        return None
    text = ("" if start else ".*") + f"(?:{core})" + ("" if end else ".*")
    try:
        parsed = interegular.parse_pattern(text)
    except (interegular.InvalidSyntax, interegular.Unsupported):
        return None
    # A lookaround reaching past the ends would need context outside the string.
    return parsed if parsed.prefix_postfix == (0, 0) else None


def _split_anchors(pattern: str) -> tuple[bool, str | None, bool]:
    """(anchored at start, body, anchored at end);
    body None when an anchor sits anywhere but at the ends of the whole pattern
    (`^a|b$` anchors only its branches) — too subtle to model here."""
    start = pattern.startswith("^")
    body = pattern[1:] if start else pattern
    end = body.endswith("$") and not _escaped(body, len(body) - 1)
    body = body[:-1] if end else body
    out, in_class, depth, i = [], False, 0, 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            out.append(body[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "^$" or (char == "|" and depth == 0 and (start or end)):
            return start, None, end
        else:
            depth += (char == "(") - (char == ")")
        out.append(char)
        i += 1
    return start, "".join(out), end


def _escaped(text: str, index: int) -> bool:
    backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
    return backslashes % 2 == 1

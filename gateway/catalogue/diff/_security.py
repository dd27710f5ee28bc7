"""Security requirement changes: can every client that got in before still get in?

An operation's `security` is a list of alternatives (any one suffices), each a
set of schemes that must all be satisfied with the scopes listed. A client that
satisfied an old alternative holds those schemes and scopes, and nothing more we
can count on; it still gets in if some new alternative asks no more of it.
"""

from __future__ import annotations

from typing import Any

from gateway.catalogue.diff._model import Change, Contract

Alternative = dict[str, frozenset[str]]
# Scheme fields that decide what a client sends; any change locks old clients out.
_SCHEME_FIELDS = ("type", "in", "name", "scheme", "openIdConnectUrl", "flows")
SCHEMES_WHERE = "components.securitySchemes"


def security_changes(old: Contract, new: Contract, o: dict, n: dict, where: str) -> list[Change]:
    before, after = _alternatives(old, o), _alternatives(new, n)
    removed = [alt for alt in before if alt not in after]
    added = [alt for alt in after if alt not in before]
    changes = []
    for alt in removed:
        twin = next((b for b in added if b.keys() == alt.keys()), None)
        if twin is not None:
            added.remove(twin)
            changes += _scopes(alt, twin, after, where)
        elif not any(_satisfies(alt, b) for b in after):
            changes.append(Change(True, where, f"security {_fmt(alt)} no longer accepted"))
        else:
            changes.append(Change(False, where, f"security {_fmt(alt)} removed (still covered)"))
    changes += [Change(False, where, f"security {_fmt(alt)} added") for alt in added]
    return changes


def scheme_changes(old: Contract, new: Contract) -> list[Change]:
    """Schemes both versions define whose wire shape differs (header name, type...)."""
    a, b = _schemes(old), _schemes(new)
    changes = []
    for name in sorted(a.keys() & b.keys()):
        fields = [f for f in _SCHEME_FIELDS if a[name].get(f) != b[name].get(f)]
        if fields:
            text = f"security scheme '{name}' changed ({', '.join(fields)})"
            changes.append(Change(True, SCHEMES_WHERE, text))
    return changes


def _scopes(alt: Alternative, twin: Alternative, after: list, where: str) -> list[Change]:
    changes = []
    extra = sorted(s for name in alt for s in twin[name] - alt[name])
    fewer = sorted(s for name in alt for s in alt[name] - twin[name])
    if extra:
        covered = any(_satisfies(alt, b) for b in after)
        text = f"security {_fmt(alt)} now needs scope(s) {', '.join(extra)}"
        changes.append(Change(not covered, where, text + (" (still covered)" if covered else "")))
    if fewer:
        text = f"security {_fmt(alt)} no longer needs scope(s) {', '.join(fewer)}"
        changes.append(Change(False, where, text))
    return changes


def _alternatives(contract: Contract, operation: dict) -> list[Alternative]:
    """The operation's requirement, or the document's; none at all is anonymous."""
    raw = operation.get("security", contract.document.get("security"))
    out: list[Alternative] = []
    for requirement in raw if isinstance(raw, list) and raw else [{}]:
        if not isinstance(requirement, dict):
            continue
        alt = {str(k): frozenset(map(str, v or [])) for k, v in requirement.items()}
        if alt not in out:
            out.append(alt)
    return out


def _satisfies(have: Alternative, need: Alternative) -> bool:
    return all(name in have and scopes <= have[name] for name, scopes in need.items())


def _schemes(contract: Contract) -> dict[str, dict[str, Any]]:
    components = contract.mapping(contract.document.get("components"))
    schemes = contract.mapping(components.get("securitySchemes"))
    return {name: contract.mapping(scheme) for name, scheme in schemes.items()}


def _fmt(alt: Alternative) -> str:
    if not alt:
        return "anonymous access"
    parts = [f"{name}[{' '.join(sorted(alt[name]))}]" for name in sorted(alt)]
    return " + ".join(parts)

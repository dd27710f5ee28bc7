"""The dependency graph as inline SVG: one column per tier, calls flow left to right."""

from __future__ import annotations

from html import escape

from gateway.catalogue.model import TIER_ORDER, ApiEntry

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 190, 38, 90, 18, 24


def related(entries: dict[str, ApiEntry], name: str) -> set[str]:
    """The API itself, everything it calls and everything that calls it, transitively."""
    seen = {name}
    for step in (lambda e: e.depends_on, lambda e: e.used_by):
        frontier = [name]
        while frontier:
            entry = entries.get(frontier.pop())
            if entry is None:
                continue
            for nxt in step(entry):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
    return seen


Traffic = dict[tuple[str, str], dict[str, object]]


def render_svg(
    entries: list[ApiEntry], highlight: str | None = None, traffic: Traffic | None = None
) -> str:
    names = {e.name for e in entries}
    columns = {tier: [e for e in entries if e.tier == tier] for tier in TIER_ORDER}
    positions: dict[str, tuple[int, int]] = {}
    for col, tier in enumerate(TIER_ORDER):
        for row, entry in enumerate(columns[tier]):
            positions[entry.name] = (
                PAD + col * (NODE_W + COL_GAP),
                PAD + 22 + row * (NODE_H + ROW_GAP),
            )
    rows = max((len(c) for c in columns.values()), default=0)
    width = PAD * 2 + 3 * NODE_W + 2 * COL_GAP
    height = PAD * 2 + 22 + max(rows, 1) * (NODE_H + ROW_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="Dependency graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5b6b7f"/>'
        "</marker></defs>",
    ]
    for col, tier in enumerate(TIER_ORDER):
        x = PAD + col * (NODE_W + COL_GAP)
        parts.append(f'<text class="tier" x="{x}" y="{PAD + 8}">{tier} APIs</text>')
    for entry in entries:
        for dep in entry.depends_on:
            if dep in names:
                live = (traffic or {}).get((entry.name, dep))
                parts.append(_edge(positions[entry.name], positions[dep], entry.name, dep, live))
    for entry in entries:
        parts.append(_node(entry, positions[entry.name], entry.name == highlight))
    parts.append("</svg>")
    return "".join(parts)


def _edge(src: tuple[int, int], dst: tuple[int, int], a: str, b: str, live: dict | None) -> str:
    x1, y1 = src[0] + NODE_W, src[1] + NODE_H // 2
    x2, y2 = dst[0], dst[1] + NODE_H // 2
    failing = bool(live and float(live["error_rate"]) > 0)
    line = (
        f'<line class="edge{" failing" if failing else ""}" data-from="{escape(a)}" '
        f'data-to="{escape(b)}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
        f'stroke="{"#c62828" if failing else "#5b6b7f"}" stroke-width="1.5" '
        'marker-end="url(#arrow)"/>'
    )
    if not live:
        return line
    label = f"{live['calls_per_min']}/min · {float(live['error_rate']) * 100:.0f}% errors"
    mx, my = (x1 + x2) // 2, (y1 + y2) // 2 - 6
    return line + (
        f'<text class="traffic" data-from="{escape(a)}" data-to="{escape(b)}" '
        f'x="{mx}" y="{my}" text-anchor="middle">{escape(label)}</text>'
    )


def _node(entry: ApiEntry, pos: tuple[int, int], highlight: bool) -> str:
    x, y = pos
    cls = f"node tier-{entry.tier}" + (" current" if highlight else "")
    name = escape(entry.name)
    return (
        f'<a href="/catalogue/api/{name}" class="{cls}" data-api="{name}">'
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f'<text x="{x + 12}" y="{y + 24}">{name}</text></a>'
    )

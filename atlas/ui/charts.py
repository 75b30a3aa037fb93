"""Pictures for the UI, drawn on the server as inline SVG: no chart library, no script.

Every function returns :class:`markupsafe.Markup` built from numbers this
module computes and text passed through :func:`html.escape`; a stored value
(a learning key, a step description) can never become markup. Hovering a bar
or a point shows its figures (an SVG ``<title>``). Colours come from CSS
classes in ``app.css``, so the CSP's ``style-src 'self'`` holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from atlas.training_data import HourStats

__all__ = ["PlanNode", "bars", "histogram", "plan_graph", "reward_timeline"]

_FONT = 11


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, cls: str = "label", anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def histogram(counts: Sequence[int], bins: int, label: str, width: int = 320) -> Markup:
    """Bars of a reward histogram: ``bins + 2`` counts (below 0, the bins of [0, 1], above 1).

    The out-of-range counts are drawn as their own bars, marked ``<0`` and
    ``>1``, and only when they are not zero.
    """
    height, top, bottom, left = 120, 14, 18, 4
    below, inner, above = counts[0], list(counts[1 : bins + 1]), counts[bins + 1]
    labels = [f"{i / bins:.2f}–{(i + 1) / bins:.2f}" for i in range(bins)]
    if below:
        inner, labels = [below, *inner], ["< 0", *labels]
    if above:
        inner, labels = [*inner, above], [*labels, "> 1"]
    peak = max(inner) or 1
    slot = (width - 2 * left) / len(inner)
    body = []
    for i, (count, name) in enumerate(zip(inner, labels, strict=True)):
        h = (height - top - bottom) * count / peak
        x = left + i * slot
        cls = "bar out" if name in ("< 0", "> 1") else "bar"
        body.append(
            f'<rect class="{cls}" x="{x + 1:.1f}" y="{height - bottom - h:.1f}" '
            f'width="{max(slot - 2, 1):.1f}" height="{h:.1f}"><title>{escape(name)}: '
            f"{count} sessions</title></rect>"
        )
    body.append(_text(left, height - 4, "< 0" if below else "0"))
    body.append(_text(width - left, height - 4, "> 1" if above else "1", anchor="end"))
    body.append(_text(left, top - 3, f"peak {peak}", cls="muted"))
    return _svg(width, height, body, label)


def bars(counts: Mapping[str, int], label: str, width: int = 360) -> Markup:
    """Horizontal bars, one per key, largest first, each with its count."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    row, name_width = 22, 110
    height = max(len(items), 1) * row + 4
    peak = max((c for _, c in items), default=0) or 1
    body = []
    for i, (name, count) in enumerate(items):
        y = i * row + 2
        w = (width - name_width - 50) * count / peak
        body.append(_text(0, y + 15, name))
        body.append(
            f'<rect class="bar status-{escape(name)}" x="{name_width}" y="{y + 3}" '
            f'width="{max(w, 1):.1f}" height="{row - 8}"><title>{escape(name)}: {count}'
            "</title></rect>"
        )
        body.append(_text(name_width + w + 6, y + 15, f"{count:,}", cls="muted"))
    return _svg(width, height, body, label)


@dataclass(frozen=True)
class Period:
    """A bar of the timeline: sessions created from ``start`` for one ``unit``."""

    start: datetime
    sessions: int
    mean_reward: float | None
    drift_alerts: int


def _bucket(hour: datetime, unit: str) -> datetime:
    if unit == "hour":
        return hour
    day = hour.replace(hour=0)
    return day if unit == "day" else day - timedelta(days=day.weekday())


def _periods(hours: Sequence[HourStats]) -> tuple[list[Period], str]:
    """Hours summed into hours, days or weeks: the finest unit that keeps bars readable.

    Up to three days of data are shown per hour, up to 120 days per day,
    longer spans per week; means are weighted by the scored sessions' counts.
    """
    if not hours:
        return [], "day"
    span = hours[-1].hour - hours[0].hour
    unit = "hour" if span <= timedelta(days=3) else "day" if span <= timedelta(days=120) else "week"
    groups: dict[datetime, list[HourStats]] = {}
    for h in hours:
        groups.setdefault(_bucket(h.hour, unit), []).append(h)
    out = []
    for start, group in sorted(groups.items()):
        scored = [(g.mean_reward, g.sessions) for g in group if g.mean_reward is not None]
        weight = sum(n for _, n in scored)
        mean = sum(m * n for m, n in scored) / weight if weight else None
        sessions = sum(g.sessions for g in group)
        out.append(Period(start, sessions, mean, sum(g.drift_alerts for g in group)))
    return out, unit


def _when(start: datetime, unit: str) -> str:
    return start.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d")


def reward_timeline(hours: Sequence[HourStats], label: str, width: int = 720) -> Markup:
    """Mean reward per hour, day or week as a line over session-count bars; drift in red."""
    periods, unit = _periods(hours)
    height, top, bottom, left = 200, 12, 24, 34
    if not periods:
        return _svg(width, height, [_text(left, height / 2, "No sessions.", cls="muted")], label)
    slot = (width - left - 8) / len(periods)
    plot = height - top - bottom
    peak = max(p.sessions for p in periods) or 1
    body = [
        _text(0, top + 4, "1.0", cls="muted"),
        _text(0, top + plot, "0.0", cls="muted"),
        f'<line class="axis" x1="{left}" y1="{top + plot}" x2="{width}" y2="{top + plot}"/>',
    ]
    points = []
    for i, p in enumerate(periods):
        x = left + i * slot
        h = plot * 0.35 * p.sessions / peak
        body.append(
            f'<rect class="bar faint" x="{x:.1f}" y="{top + plot - h:.1f}" '
            f'width="{max(slot - 1, 1):.1f}" height="{h:.1f}"><title>{_when(p.start, unit)}: '
            f"{p.sessions} sessions</title></rect>"
        )
        if p.mean_reward is None:
            continue
        y = top + plot * (1 - min(max(p.mean_reward, 0.0), 1.0))
        cx = x + slot / 2
        points.append(f"{cx:.1f},{y:.1f}")
        cls = "point drift" if p.drift_alerts else "point"
        r = 4 if p.drift_alerts else 2.5
        tip = f"{_when(p.start, unit)}: mean reward {p.mean_reward:.3f}, {p.sessions} sessions"
        if p.drift_alerts:
            tip += f", {p.drift_alerts} drift alerts"
        body.append(
            f'<circle class="{cls}" cx="{cx:.1f}" cy="{y:.1f}" r="{r}"><title>{escape(tip)}'
            "</title></circle>"
        )
    if len(points) > 1:
        body.insert(3, f'<polyline class="line" points="{" ".join(points)}"/>')
    first, last = _when(periods[0].start, unit), _when(periods[-1].start, unit)
    body.append(_text(left, height - 6, f"{first} (per {unit})", cls="muted"))
    body.append(_text(width, height - 6, last, cls="muted", anchor="end"))
    return _svg(width, height, body, label)


@dataclass(frozen=True)
class PlanNode:
    """One step of a plan: its id, a short label and the ids it depends on."""

    step_id: str
    label: str
    depends_on: tuple[str, ...]


def _depths(nodes: Sequence[PlanNode]) -> dict[str, int]:
    """Each node's layer: the longest chain of dependencies below it (cycles are cut)."""
    known = {n.step_id: n for n in nodes}
    depth: dict[str, int] = {}

    def visit(sid: str, path: frozenset[str]) -> int:
        if sid in depth:
            return depth[sid]
        deps = [d for d in known[sid].depends_on if d in known and d not in path]
        value = 1 + max((visit(d, path | {sid}) for d in deps), default=-1)
        depth[sid] = value
        return value

    for n in nodes:
        visit(n.step_id, frozenset())
    return depth


def plan_graph(nodes: Sequence[PlanNode], label: str = "Plan") -> Markup:
    """The plan as a left-to-right dependency graph: a column per layer, an arrow per edge.

    A dependency on a step the plan does not hold is listed under its node
    (``needs 7?``) rather than drawn.
    """
    if not nodes:
        return _svg(300, 40, [_text(4, 24, "No plan steps.", cls="muted")], label)
    depth = _depths(nodes)
    layers: dict[int, list[PlanNode]] = {}
    for n in nodes:
        layers.setdefault(depth[n.step_id], []).append(n)
    box_w, box_h, gap_x, gap_y = 180, 46, 50, 14
    width = len(layers) * (box_w + gap_x) - gap_x + 8
    height = max(len(v) for v in layers.values()) * (box_h + gap_y) - gap_y + 8
    where: dict[str, tuple[float, float]] = {}
    for layer, members in layers.items():
        for i, n in enumerate(members):
            where[n.step_id] = (4 + layer * (box_w + gap_x), 4 + i * (box_h + gap_y))
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'class="arrowhead"/></marker></defs>'
    ]
    for n in nodes:
        x, y = where[n.step_id]
        for dep in n.depends_on:
            if dep in where:
                dx, dy = where[dep]
                body.append(
                    f'<line class="edge" x1="{dx + box_w:.1f}" y1="{dy + box_h / 2:.1f}" '
                    f'x2="{x:.1f}" y2="{y + box_h / 2:.1f}" marker-end="url(#arrow)"/>'
                )
    for n in nodes:
        x, y = where[n.step_id]
        missing = [d for d in n.depends_on if d not in where]
        text = n.label if len(n.label) <= 26 else n.label[:25] + "…"
        body.append(
            f'<g class="node"><rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" '
            f'rx="6"/><title>{escape(f"Step {n.step_id}: {n.label}")}</title>'
            + _text(x + 8, y + 17, f"Step {n.step_id}", cls="node-id")
            + _text(x + 8, y + 34, text)
            + (_text(x + 8, y + box_h + 11, f"needs {', '.join(missing)}?", cls="muted")
               if missing else "")
            + "</g>"
        )  # fmt: skip
    return _svg(width, height + 12, body, label)

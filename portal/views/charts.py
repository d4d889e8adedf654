"""Charts drawn on the server as inline SVG: no script, no CDN, nothing for the CSP to allow.

``line_chart`` draws a weekly trend (points link to the orders behind them, a dashed line
marks the target); ``pareto_chart`` draws bars largest first with the cumulative share as a
line, each bar a link. Every label is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

GREEN, AMBER, RED, GREY, BLUE = "#3c763d", "#c77c02", "#a94442", "#999999", "#337ab7"


@dataclass(frozen=True)
class Point:
    label: str
    value: float | None
    href: str
    text: str  # the value as shown (tooltip)


def _n(value: float) -> str:
    return f"{value:.1f}"


def line_chart(
    points: list[Point],
    *,
    target: float | None = None,
    width: int = 240,
    height: int = 70,
    title: str = "",
) -> Markup:
    """A small line chart of ``points`` (None values leave a gap), with the target dashed."""
    pad = 6
    values = [p.value for p in points if p.value is not None]
    scale = [*values, *([target] if target is not None else [])]
    low, high = (min(scale), max(scale)) if scale else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    step = (width - 2 * pad) / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return pad + i * step

    def y(v: float) -> float:
        return height - pad - (v - low) / (high - low) * (height - 2 * pad)

    parts = [
        f'<svg class="ob-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if target is not None:
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{_n(y(target))}" y2="{_n(y(target))}" '
            f'stroke="{GREY}" stroke-dasharray="4 3" stroke-width="1"/>'
        )
    segment: list[str] = []
    for i, point in enumerate([*points, Point("", None, "", "")]):
        if point.value is not None:
            segment.append(f"{_n(x(i))},{_n(y(point.value))}")
            continue
        if len(segment) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{BLUE}" stroke-width="2" '
                f'points="{" ".join(segment)}"/>'
            )
        segment = []
    for i, point in enumerate(points):
        if point.value is None:
            continue
        parts.append(
            f'<a href="{escape(point.href)}"><circle class="ob-point" cx="{_n(x(i))}" '
            f'cy="{_n(y(point.value))}" r="3.5" fill="{BLUE}">'
            f"<title>{escape(point.label)}: {escape(point.text)}</title></circle></a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class ParetoBar:
    label: str
    count: int
    cumulative: Decimal
    href: str


def pareto_chart(bars: list[ParetoBar], *, width: int = 720, bar_height: int = 24) -> Markup:
    """Horizontal bars, largest first, each a link to its orders; the running share beside."""
    if not bars:
        return Markup('<p class="text-muted">No problems recorded in this week.</p>')
    label_width, share_width = 300, 150
    top = max(bar.count for bar in bars)
    plot = width - label_width - share_width - 30  # room for the count after the bar
    height = bar_height * len(bars) + 4
    parts = [
        f'<svg class="ob-pareto" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Root causes, most frequent first</title>",
    ]
    for i, bar in enumerate(bars):
        y = i * bar_height + 2
        length = max(bar.count / top * plot, 2)
        parts.append(
            f'<a class="ob-pareto-bar" href="{escape(bar.href)}">'
            f'<text x="{label_width - 6}" y="{y + bar_height * 0.68:.1f}" text-anchor="end" '
            f'font-size="12">{escape(bar.label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" '
            f'height="{bar_height - 6}" fill="{BLUE}"><title>{escape(bar.label)}: '
            f"{bar.count}</title></rect>"
            f'<text x="{label_width + length + 4:.1f}" y="{y + bar_height * 0.68:.1f}" '
            f'font-size="12">{bar.count}</text></a>'
            f'<text x="{width - share_width + 10}" y="{y + bar_height * 0.68:.1f}" '
            f'font-size="12" fill="{GREY}">{bar.cumulative * 100:.0f}% cumulative</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))

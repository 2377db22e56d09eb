"""Small inline SVG charts: grouped bars and lines, nothing else.

The backtest report must open from a file, offline, in any browser, and be attachable to
an email: so no JavaScript, no chart library, no fonts or styles from the network. Two
chart kinds cover it; every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 520, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 40
COLOURS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]


def _frame(title: str, y_max: float, y_label: str) -> list[str]:
    inner_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}'
             "</text>"]
    for step in range(5):
        value = y_max * step / 4
        y = TOP + inner_h - inner_h * step / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{_fmt(value)}</text>')
    parts.append(f'<text x="10" y="{TOP + inner_h / 2:.0f}" font-size="10" '
                 f'transform="rotate(-90 10 {TOP + inner_h / 2:.0f})" text-anchor="middle">'
                 f"{escape(y_label)}</text>")
    return parts


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above `value`: round axis ticks."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    for i, line in enumerate(series):
        x = LEFT + 8 + i * 170
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" '
                     f'fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="10">'
                     f"{escape(line.name[:28])}</text>")
    return parts


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series],
              y_label: str = "") -> str:
    """Grouped bars: one group per label, one bar per series."""
    y_max = nice_ceiling(max([v for s in series for v in s.values] + [0.0]))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, y_max, y_label)
    group = inner_w / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for g, label in enumerate(labels):
        x0 = LEFT + g * group + group * 0.1
        for s, line in enumerate(series):
            value = line.values[g] if g < len(line.values) else 0.0
            h = inner_h * value / y_max
            parts.append(f'<rect x="{x0 + s * bar:.1f}" y="{TOP + inner_h - h:.1f}" '
                         f'width="{bar * 0.95:.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS[s % len(COLOURS)]}"><title>{escape(label)}: '
                         f"{value:.3g}</title></rect>")
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{TOP + inner_h + 12}" '
                     f'font-size="9" text-anchor="middle">{escape(label)}</text>')
    return "\n".join([*parts, *_legend(series), "</svg>"])


def line_chart(title: str, xs: Sequence[float], series: Sequence[Series],
               y_label: str = "", diagonal: bool = False) -> str:
    """Lines over a shared x axis from min(xs) to max(xs); `diagonal` draws y = x."""
    y_max = nice_ceiling(max([v for s in series for v in s.values] + [0.0]))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (hi - lo) or 1.0

    def point(x: float, y: float) -> str:
        return f"{LEFT + inner_w * (x - lo) / span:.1f},{TOP + inner_h - inner_h * y / y_max:.1f}"
    parts = _frame(title, y_max, y_label)
    if diagonal:
        parts.append(f'<polyline points="{point(lo, lo)} {point(hi, min(hi, y_max))}" '
                     'fill="none" stroke="#999" stroke-dasharray="4 3"/>')
    for s, line in enumerate(series):
        path = " ".join(point(x, y) for x, y in zip(xs, line.values, strict=False))
        parts.append(f'<polyline points="{path}" fill="none" stroke-width="2" '
                     f'stroke="{COLOURS[s % len(COLOURS)]}"/>')
    for step in range(5):
        x = lo + span * step / 4
        parts.append(f'<text x="{LEFT + inner_w * step / 4:.1f}" y="{TOP + inner_h + 12}" '
                     f'font-size="9" text-anchor="middle">{_fmt(x)}</text>')
    return "\n".join([*parts, *_legend(series), "</svg>"])

"""Charts as SVG drawn on the server, and the small text filters the templates use.

Plain functions from numbers to markup: no JavaScript, nothing to load, readable in any
browser and in a screenshot. Every label is escaped; every chart has a <title> (what a
screen reader says) and each bar one with its exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from markupsafe import Markup, escape

#: one colour per series, readable on white and for the common colour blindnesses
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def when(value: datetime | None) -> str:
    """A time as the admin reads it: UTC, to the minute."""
    if value is None:
        return "-"
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def duration(value: timedelta | float | None) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, width: int = 560,
              unit: str = "") -> Markup:
    """Horizontal bars, one per (label, value), longest to scale."""
    longest = max((len(label) for label, _value in bars), default=0)
    row, height = 22, 22 * max(len(bars), 1) + 30
    label_width = min(max(80, 7 * longest + 10), width // 2)
    top = max((value for _label, value in bars), default=0.0) or 1.0
    span = width - label_width - 70
    parts = [_open(title, width, height)]
    for index, (label, value) in enumerate(bars):
        y = 24 + index * row
        length = max(0.0, value) / top * span
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row - 6}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {_fmt(value)}{unit}</title></rect>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 14}">{_fmt(value)}{unit}</text>')
    if not bars:
        parts.append('<text x="10" y="40">no data yet</text>')
    return Markup("".join(parts) + "</svg>")


def column_chart(title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
                 *, width: int = 640, height: int = 240, unit: str = "") -> Markup:
    """Vertical columns: for each group (x axis), one column per series, with a legend."""
    left, bottom, top_pad = 40, 40, 40
    plot_h = height - bottom - top_pad
    slot = (width - left - 10) / max(len(groups), 1)
    column = max(2.0, (slot - 6) / max(len(series), 1))
    top = max((v for _name, values in series for v in values), default=0.0) or 1.0
    parts = [_open(title, width, height)]
    for index, (name, _values) in enumerate(series):
        x = left + index * 150
        parts.append(f'<rect x="{x}" y="22" width="10" height="10" '
                     f'fill="{PALETTE[index % len(PALETTE)]}"/>'
                     f'<text x="{x + 14}" y="31">{escape(name)}</text>')
    base = height - bottom
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" '
                 'stroke="#999"/>'
                 f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{_fmt(top)}</text>'
                 f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>')
    for g, group in enumerate(groups):
        x0 = left + g * slot + 3
        for s, (name, values) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            h = max(0.0, value) / top * plot_h
            parts.append(f'<rect x="{x0 + s * column:.1f}" y="{base - h:.1f}" '
                         f'width="{column - 1:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(group)}, '
                         f'{escape(name)}: {_fmt(value)}{unit}</title></rect>')
        parts.append(f'<text x="{x0 + slot / 2 - 3:.1f}" y="{base + 14}" '
                     f'text-anchor="middle">{escape(group)}</text>')
    if not groups:
        parts.append(f'<text x="{left}" y="{base - 20}">no data yet</text>')
    return Markup("".join(parts) + "</svg>")


def _open(title: str, width: int, height: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'font-family="sans-serif" font-size="12"><title>{escape(title)}</title>'
            f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>')

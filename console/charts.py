"""Small SVG charts drawn on the server: no JavaScript, no build step, readable without colour.

Each chart is an accessible ``<svg role="img">`` with a ``<title>`` and one ``<title>`` per bar
(hover shows the figure), so the dashboard reads in a screenshot and with a screen reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 180
PAD = 28


def day_bars(title: str, series: Sequence[tuple[date, int]], colour: str = "#4f6bd8") -> Markup:
    """Vertical bars, one per day, with the first and last day and the peak labelled."""
    peak = max((count for _, count in series), default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(series), 1)
    bars = []
    for index, (day, count) in enumerate(series):
        height = (HEIGHT - 2 * PAD) * count / peak
        x = PAD + index * slot
        y = HEIGHT - PAD - height
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
            f'height="{height:.1f}" fill="{colour}">'
            f"<title>{day.isoformat()}: {count}</title></rect>"
        )
    labels = ""
    if series:
        labels = (
            f'<text x="{PAD}" y="{HEIGHT - 8}" class="axis">{series[0][0].strftime("%d %b")}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="axis" text-anchor="end">'
            f"{series[-1][0].strftime('%d %b')}</text>"
        )
    total = sum(count for _, count in series)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: {total} in {len(series)} days">'
        f"<title>{escape(title)}</title>"
        f'<text x="{PAD}" y="16" class="caption">{escape(title)} · {total} in all · '
        f"peak {peak}</text>"
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        f'class="baseline"/>{"".join(bars)}{labels}</svg>'
    )


def ranked_bars(title: str, rows: Sequence[tuple[str, int]], colour: str = "#2e9e6b") -> Markup:
    """Horizontal bars, one per label, longest first (keyword coverage, top demand)."""
    row_height = 22
    height = PAD + row_height * max(len(rows), 1) + 8
    peak = max((count for _, count in rows), default=0) or 1
    label_width = 140
    span = WIDTH - label_width - PAD - 40
    parts = []
    for index, (label, count) in enumerate(rows):
        y = PAD + index * row_height
        length = span * count / peak
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" class="label">'
            f"{escape(label)}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{max(length, 1):.1f}" height="16" '
            f'fill="{colour}"><title>{escape(label)}: {count}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 15}" class="value">{count}</text>'
        )
    if not rows:
        parts.append(f'<text x="{PAD}" y="{PAD + 15}" class="label">nothing yet</text>')
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="{PAD}" y="16" class="caption">{escape(title)}</text>{"".join(parts)}</svg>'
    )

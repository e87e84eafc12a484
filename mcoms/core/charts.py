"""Small server-drawn charts: bars and lines as SVG, with the same numbers as a table.

Pages on weak connections should not fetch a charting library, so charts are drawn on the
server: :func:`chart` turns labelled series into coordinates, and the template
``core/_chart.html`` draws them (``{% include "core/_chart.html" with chart=... %}``). Every
chart carries a table of its numbers for screen readers and for people who would rather read.

Series are drawn in order: bars side by side, lines on top. ``None`` is a gap (no data), never
zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

# Colours with at least 4.5:1 contrast against white.
PALETTE = ("#1f5f99", "#b3541e", "#2e7d32", "#6a1b9a", "#37474f")


@dataclass
class Series:
    label: str
    values: Sequence[float | Decimal | int | None]
    kind: str = "bar"  # "bar" or "line"
    colour: str = ""
    dashed: bool = False


@dataclass
class Chart:
    title: str
    unit: str
    width: int
    height: int
    pad_l: int
    pad_b: int
    pad_t: int
    pad_r: int
    x_labels: list[dict] = field(default_factory=list)
    y_ticks: list[dict] = field(default_factory=list)
    bars: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    legend: list[dict] = field(default_factory=list)
    table_head: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    empty: bool = True

    @property
    def plot_bottom(self) -> int:
        return self.height - self.pad_b

    @property
    def plot_right(self) -> int:
        return self.width - self.pad_r


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (1 when there is nothing)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exponent
        if top >= value * 0.999999:
            return float(top)
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop always returns


def _fmt(value: float | Decimal | int | None, places: int) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.{places}f}"


def chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    unit: str,
    places: int = 1,
    width: int = 640,
    height: int = 220,
    max_x_labels: int = 8,
) -> Chart:
    """Coordinates for ``series`` over ``labels`` (one value per label in each series)."""
    pad_l, pad_b, pad_t, pad_r = 48, 28, 12, 8
    result = Chart(title, unit, width, height, pad_l, pad_b, pad_t, pad_r)
    values = [float(v) for s in series for v in s.values if v is not None]
    result.empty = not labels or not values
    result.table_head = ["", *(f"{s.label} ({unit})" for s in series)]
    result.table_rows = [
        [str(label), *(_fmt(s.values[i], places) for s in series)] for i, label in enumerate(labels)
    ]
    for index, s in enumerate(series):
        colour = s.colour or PALETTE[index % len(PALETTE)]
        result.legend.append(
            {"label": s.label, "colour": colour, "kind": s.kind, "dashed": s.dashed}
        )
    if result.empty:
        return result

    top = nice_top(max(max(values), 0.0))
    bottom = min(min(values), 0.0)
    if bottom < 0:
        bottom = -nice_top(-bottom)
    span = top - bottom
    plot_w = width - pad_l - pad_r
    plot_h = height - pad_t - pad_b
    n = len(labels)
    slot = plot_w / n

    def y(v: float) -> float:
        return pad_t + plot_h * (top - v) / span

    for k in range(5):
        v = bottom + span * k / 4
        result.y_ticks.append({"y": round(y(v), 1), "label": _fmt(v, 0 if span >= 8 else 1)})
    every = max(1, math.ceil(n / max_x_labels))
    for i, label in enumerate(labels):
        if i % every == 0:
            result.x_labels.append({"x": round(pad_l + slot * (i + 0.5), 1), "label": str(label)})

    bar_series = [s for s in series if s.kind == "bar"]
    bar_w = slot * 0.8 / max(1, len(bar_series))
    zero = y(0.0)
    for index, s in enumerate(series):
        colour = result.legend[index]["colour"]
        if s.kind == "bar":
            position = bar_series.index(s)
            for i, v in enumerate(s.values):
                if v is None:
                    continue
                vy = y(float(v))
                result.bars.append(
                    {
                        "x": round(pad_l + slot * i + slot * 0.1 + bar_w * position, 1),
                        "y": round(min(vy, zero), 1),
                        "w": round(max(bar_w - 1, 1), 1),
                        "h": round(max(abs(zero - vy), 0.5), 1),
                        "colour": colour,
                        "tip": f"{labels[i]}: {_fmt(v, places)} {unit} ({s.label})",
                    }
                )
        else:
            segment: list[str] = []
            segments: list[str] = []
            for i, v in enumerate(s.values):
                if v is None:
                    if segment:
                        segments.append(" ".join(segment))
                    segment = []
                    continue
                segment.append(f"{pad_l + slot * (i + 0.5):.1f},{y(float(v)):.1f}")
            if segment:
                segments.append(" ".join(segment))
            for points in segments:
                result.lines.append(
                    {"points": points, "colour": colour, "dashed": s.dashed, "label": s.label}
                )
    return result

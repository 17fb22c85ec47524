"""Geometry of the Monitoring page's time-series charts (server-side SVG, drawn by templates/serving/monitoring.html
as the model-quality pages draw theirs). Its own module: labeling/charts.py is at the layout's length limit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from labeling.charts import _fmt, _ticks, text_width


def time_chart(
    slots: Sequence[str],
    *,
    y_label: str,
    bars: Sequence[float | None] = (),
    bar_name: str = "",
    bar_color: str = "#4c78a8",
    lines: Sequence[tuple[str, Sequence[float | None], str]] = (),
    y_range: tuple[float, float] | None = None,
    threshold: tuple[str, float] | None = None,
    marks: Sequence[bool] = (),
    notes: Sequence[str] = (),
    width: int = 640,
    height: int = 240,
    counts: bool = False,
) -> dict:
    """A time series over equal slots (days, windows) named by `slots`: vertical bars, lines with markers, a
    dashed horizontal threshold line and marked slots (a red band behind the slot, e.g. a drifted window).

    `bars` and each line's values align with `slots` (None draws nothing there); `notes` (one per slot) go into
    the tooltips. `y_range` defaults to 0 .. the largest value. Slot labels are thinned so that they never overlap.
    With `counts` the y axis is labeled in whole numbers only (no "0.4 predictions")."""
    left, right, top, bottom = 56, 16, 16, 44
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(slots))
    step = pw / n
    values = [v for v in bars if v is not None] + [v for _, vs, _ in lines for v in vs if v is not None]
    if y_range is None:
        y_range = (0.0, max([*values, threshold[1] if threshold else 0.0, 1.0]))
    y_lo, y_hi = y_range
    span = (y_hi - y_lo) or 1.0

    def cx(i: int) -> float:
        return left + step * (i + 0.5)

    def py(y: float) -> float:
        return top + ph * (1 - (min(y_hi, max(y_lo, y)) - y_lo) / span)

    def note(i: int) -> str:
        return f" ({notes[i]})" if i < len(notes) and notes[i] else ""

    bar_w = max(1.0, step * 0.7)
    drawn_bars = [
        {"x": cx(i) - bar_w / 2, "y": py(v), "w": bar_w, "h": py(y_lo) - py(v),
         "title": f"{slots[i]}: {bar_name} {v:g}{note(i)}"}
        for i, v in enumerate(bars) if v is not None and math.isfinite(v)
    ]  # fmt: skip
    drawn_lines = []
    for name, vs, color in lines:
        points = [(cx(i), py(v), i, v) for i, v in enumerate(vs) if v is not None and math.isfinite(v)]
        drawn_lines.append(
            {
                "name": name,
                "color": color,
                "path": " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in points),
                "points": [
                    {"x": a, "y": b, "title": f"{slots[i]}: {name} {_fmt(v, 3)}{note(i)}"} for a, b, i, v in points
                ],
            }
        )
    widest = max((text_width(s, 11) for s in slots), default=0.0) + 8
    every = max(1, math.ceil(widest / step))
    x_ticks = [{"x": cx(i), "y": top + ph + 16, "text": s} for i, s in enumerate(slots) if i % every == 0]
    legend = [(bar_name, bar_color)] if bars and bar_name else []
    legend += [(name, color) for name, _, color in lines]
    return {
        "width": width,
        "height": height,
        "bars": drawn_bars,
        "bar_color": bar_color,
        "lines": drawn_lines,
        "marks": [{"x": left + step * i, "w": step, "title": f"{slots[i]}{note(i)}"} for i, m in enumerate(marks) if m],
        "threshold": (
            {"y": py(threshold[1]), "text": f"{threshold[0]} {threshold[1]:g}", "tx": left + pw - 4}
            if threshold
            else None
        ),
        "x_ticks": x_ticks,
        "y_ticks": [{"y": py(t), "x": left - 6, "text": f"{t:g}"} for t in _ticks(y_lo, y_hi, integer=counts)],
        "plot": {"left": left, "top": top, "right": left + pw, "bottom": top + ph, "height": ph},
        "y_label": y_label,
        "y_label_y": top + ph / 2,
        "legend": [
            {
                "name": name,
                "color": color,
                "x": left + 8 + 130 * k,
                "tx": left + 22 + 130 * k,
                "y": height - 14,
                "ty": height - 5,
            }
            for k, (name, color) in enumerate(legend)
        ],
        "empty": not slots,
    }

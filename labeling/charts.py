"""Geometry for the server-side SVG charts (templates/labeling/_charts.html draws them; no JS library).

Each builder returns a plain dict of coordinates and already-formatted strings; the template only places them.
Text is passed through as data and escaped by the template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _blend(t: float, low: tuple[int, int, int] = (247, 251, 255), high: tuple[int, int, int] = (8, 69, 148)) -> str:
    t = min(1.0, max(0.0, t))
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def bar_chart(
    rows: Sequence[tuple[str, float | None]],
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    width: int = 520,
    bar_height: int = 18,
    label_width: int = 150,
    title: str = "",
) -> dict:
    """Horizontal bars for values in [lo, hi] (None draws no bar); a zero line when lo < 0."""
    plot = width - label_width - 50
    gap = 6
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return label_width + plot * (min(hi, max(lo, v)) - lo) / span

    zero = x(0.0) if lo < 0 < hi else x(lo)
    bars = []
    for i, (label, value) in enumerate(rows):
        y = 10 + i * (bar_height + gap)
        if value is None or not math.isfinite(value):
            bars.append(
                {"label": label, "y": y, "ty": y + bar_height * 0.75, "x": zero, "w": 0, "vx": zero + 4, "text": "n/a"}
            )
            continue
        end = x(value)
        bars.append(
            {
                "label": label,
                "y": y,
                "ty": y + bar_height * 0.75,
                "x": min(zero, end),
                "w": abs(end - zero),
                "vx": max(zero, end) + 4,
                "text": _fmt(value),
                "color": "#e45756" if value < 0 else "#4c78a8",
            }
        )
    height = 20 + len(rows) * (bar_height + gap)
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "bar_height": bar_height,
        "zero": zero,
        "label_x": label_width - 6,
        "title": title,
        "axis_bottom": height - 6,
    }


def heatmap(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    hrefs: Sequence[Sequence[str | None]] | None = None,
    cell: int = 34,
    label_width: int = 130,
) -> dict:
    """Confusion-matrix heatmap: rows = true class, columns = predicted; shade by row-normalised share."""
    n = len(labels)
    top = label_width
    cells = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, value in enumerate(row):
            share = value / total
            cells.append(
                {
                    "x": label_width + j * cell,
                    "y": top + i * cell,
                    "tx": label_width + j * cell + cell / 2,
                    "ty": top + i * cell + cell / 2 + 4,
                    "fill": _blend(share),
                    "ink": "#ffffff" if share > 0.5 else "#1b1b1b",
                    "text": str(int(value)) if float(value).is_integer() else _fmt(value),
                    "title": f"true {labels[i]} → predicted {labels[j]}: {value:g} ({share:.0%} of row)",
                    "href": (hrefs[i][j] if hrefs else None) if value else None,
                    "diagonal": i == j,
                }
            )
    return {
        "width": label_width + n * cell + 10,
        "height": top + n * cell + 10,
        "cell": cell,
        "cells": cells,
        "rows": [
            {"label": lab, "x": label_width - 6, "y": top + i * cell + cell / 2 + 4} for i, lab in enumerate(labels)
        ],
        "cols": [
            {"label": lab, "x": label_width + j * cell + cell / 2 + 4, "y": top - 6} for j, lab in enumerate(labels)
        ],
    }


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.ceil(lo / step) * step
    out, v = [], start
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float | None]], str]],
    *,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    width: int = 560,
    height: int = 280,
) -> dict:
    """Lines with markers; `series` = [(name, [(x, y)...], colour)]. Points with y None are skipped."""
    left, right, top, bottom = 50, 20, 16, 40
    xs = [x for _, pts, _ in series for x, y in pts if y is not None]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_lo, y_hi = y_range
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * (x - x_lo) / (x_hi - x_lo)

    def py(y: float) -> float:
        return top + ph * (1 - (min(y_hi, max(y_lo, y)) - y_lo) / (y_hi - y_lo))

    lines = []
    for name, pts, color in series:
        points = [(px(x), py(y), x, y) for x, y in pts if y is not None]
        lines.append(
            {
                "name": name,
                "color": color,
                "path": " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in points),
                "points": [{"x": a, "y": b, "title": f"{name}: {y:.3f} at {x:g}"} for a, b, x, y in points],
            }
        )
    return {
        "width": width,
        "height": height,
        "lines": lines,
        "x_ticks": [{"x": px(t), "y": top + ph + 16, "text": f"{t:g}"} for t in _ticks(x_lo, x_hi)],
        "y_ticks": [{"y": py(t), "x": left - 6, "text": f"{t:g}"} for t in _ticks(y_lo, y_hi)],
        "plot": {"left": left, "top": top, "right": left + pw, "bottom": top + ph},
        "x_label": x_label,
        "y_label": y_label,
        "x_label_x": left + pw / 2,
        "x_label_y": height - 6,
        "y_label_y": top + ph / 2,
        "legend": [
            {
                "name": name,
                "color": color,
                "x": left + pw - 130,
                "tx": left + pw - 116,
                "y": top + 4 + 14 * k,
                "ty": top + 13 + 14 * k,
            }
            for k, (name, _, color) in enumerate(series)
        ],
    }


def reliability_diagram(bins: Sequence[dict], *, width: int = 320, height: int = 320) -> dict:
    """Accuracy per confidence bin against the diagonal; bins = [{lower, upper, count, accuracy, confidence}]."""
    left, right, top, bottom = 44, 12, 12, 36
    pw, ph = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + pw * v

    def py(v: float) -> float:
        return top + ph * (1 - v)

    bars = []
    for b in bins:
        acc, conf, count = b.get("accuracy"), b.get("confidence"), b.get("count", 0)
        lower, upper = float(b.get("lower", 0.0)), float(b.get("upper", 1.0))
        if acc is None or not count:
            continue
        bars.append(
            {
                "x": px(lower) + 1,
                "w": max(1.0, px(upper) - px(lower) - 2),
                "y": py(acc),
                "h": py(0) - py(acc),
                "gap_y": py(max(acc, conf if conf is not None else acc)),
                "gap_h": abs(py(acc) - py(conf if conf is not None else acc)),
                "title": f"{lower:.1f} to {upper:.1f}: accuracy {acc:.2f}, confidence {_fmt(conf)}, {count} items",
            }
        )
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "diag": {"x1": px(0), "y1": py(0), "x2": px(1), "y2": py(1)},
        "ticks": [
            {"v": f"{t:g}", "x": px(t), "y": py(t) + 3, "lx": left - 4, "ly": top + ph + 14}
            for t in (0, 0.25, 0.5, 0.75, 1.0)
        ],
        "y_label_y": top + ph / 2,
        "plot": {"left": left, "top": top, "right": left + pw, "bottom": top + ph},
        "x_label_x": left + pw / 2,
        "x_label_y": height - 4,
    }

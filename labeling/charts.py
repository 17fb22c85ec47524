"""Geometry for the server-side SVG charts (templates/labeling/_charts.html draws them; no JS library).

Each builder returns a plain dict of coordinates and already-formatted strings; the template only places them.
Text is passed through as data and escaped by the template. Labels are measured (`text_width`) and shortened to
the space they have (`fit_text`, the full text goes in a tooltip), so no label is clipped or runs into the plot.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence

from labeling.selectors.classes import DISPLAY_SEPARATOR

# Advance widths of DejaVu Sans (what system-ui/sans-serif resolve to on Debian), in thousandths of an em, for
# the printable ASCII characters " " to "~". DejaVu is wider than Arial, Helvetica, Roboto and Segoe UI, so a
# label measured with it fits in those fonts too.
_ASCII_WIDTHS = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636,
    636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656,
    557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613,
    635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818,
    592, 592, 525, 636, 337, 636, 838,
)  # fmt: skip
ELLIPSIS = "…"


def _char_width(ch: str) -> float:
    code = ord(ch)
    if 32 <= code <= 126:
        return _ASCII_WIDTHS[code - 32] / 1000
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0.0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.25  # CJK and emoji: an em, and colour emoji fonts run wider
    return 1.0  # accented Latin, Greek, Cyrillic: wider than any of them (a safe upper bound)


def text_width(text: str, font_size: float) -> float:
    """Rendered width in px of `text` at `font_size` px in a sans-serif font (an upper bound, see above)."""
    return font_size * sum(_char_width(ch) for ch in text)


def _cut(text: str, max_width: float, font_size: float) -> str:
    """The longest start of `text` that fits in max_width px together with an ellipsis."""
    budget = max_width - text_width(ELLIPSIS, font_size)
    used, n = 0.0, 0
    for ch in text:
        w = _char_width(ch) * font_size
        if used + w > budget:
            break
        used, n = used + w, n + 1
    if n == 0:
        return ELLIPSIS if budget >= 0 else ""
    return text[:n].rstrip() + ELLIPSIS


def fit_text(text: str, max_width: float, font_size: float) -> str:
    """`text`, or the most of it that fits in max_width px, marked with an ellipsis.

    A taxonomy path ("animal / mammal / cat") drops whole levels from the top first ("… / mammal / cat"); if
    the leaf alone is too long, the start of the leaf is kept ("Golden retrie…"). Other text keeps its start."""
    if text_width(text, font_size) <= max_width:
        return text
    parts = text.split(DISPLAY_SEPARATOR)
    for k in range(1, len(parts)):
        shorter = ELLIPSIS + DISPLAY_SEPARATOR + DISPLAY_SEPARATOR.join(parts[k:])
        if text_width(shorter, font_size) <= max_width:
            return shorter
    return _cut(parts[-1], max_width, font_size)


def _label(text: str, max_width: float, font_size: float) -> dict:
    shown = fit_text(text, max_width, font_size)
    return {"text": shown, "full": text, "cut": shown != text, "width": text_width(shown, font_size)}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _blend(t: float, low: tuple[int, int, int] = (247, 251, 255), high: tuple[int, int, int] = (8, 69, 148)) -> str:
    t = min(1.0, max(0.0, t))
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


BAR_FONT = 12
BAR_LABEL_GAP = 6


def bar_chart(
    rows: Sequence[tuple],
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    width: int = 520,
    bar_height: int = 18,
    label_width: int | None = None,
    max_label_width: int = 220,
    title: str = "",
) -> dict:
    """Horizontal bars for values in [lo, hi] (None draws no bar); a zero line when lo < 0.

    The label column is as wide as the longest label needs, up to max_label_width; longer labels are shortened
    (the full text is their tooltip). A row is (label, value) or (label, value, (low, high) or None, n): a proportion
    of n with its interval, drawn as a whisker over the bar and said beside it, "0.50 [0.09, 0.91] n = 2" (the plot
    narrows to leave the words room)."""
    if label_width is None:
        widest = max((text_width(row[0], BAR_FONT) for row in rows), default=0.0)
        label_width = math.ceil(min(max_label_width, widest + 2 * BAR_LABEL_GAP))
    label_width = max(label_width, 4 * BAR_FONT)
    texts = [_fmt(row[1]) + (_interval_note(*row[2:4]) if len(row) > 2 else "") for row in rows]
    plot = width - label_width - max(50, math.ceil(max((text_width(t, 11) for t in texts), default=0) + 8))
    gap = 6
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return label_width + plot * (min(hi, max(lo, v)) - lo) / span

    zero = x(0.0) if lo < 0 < hi else x(lo)
    bars = []
    for i, (label, value, *interval) in enumerate(rows):
        y = 10 + i * (bar_height + gap)
        fitted = _label(label, label_width - 2 * BAR_LABEL_GAP, BAR_FONT)
        if value is None or not math.isfinite(value):
            bars.append(
                {"label": fitted, "y": y, "ty": y + bar_height * 0.75, "x": zero, "w": 0, "vx": zero + 4, "text": "n/a"}
            )
            continue
        end = x(value)
        bounds = interval[0] if interval else None
        mid = y + bar_height / 2
        whisker = (
            {"x1": x(bounds[0]), "x2": x(bounds[1]), "y": mid, "top": mid - 4, "bottom": mid + 4} if bounds else None
        )
        bars.append(
            {
                "label": fitted,
                "y": y,
                "ty": y + bar_height * 0.75,
                "x": min(zero, end),
                "w": abs(end - zero),
                "vx": max(zero, end, whisker["x2"] if whisker else zero) + 4,
                "text": texts[i],
                "color": "#e45756" if value < 0 else "#4c78a8",
                "whisker": whisker,
            }
        )
    height = 20 + len(rows) * (bar_height + gap)
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "bar_height": bar_height,
        "zero": zero,
        "label_x": label_width - BAR_LABEL_GAP,
        "label_width": label_width,
        "font_size": BAR_FONT,
        "title": title,
        "axis_bottom": height - 6,
    }


def _interval_note(bounds: tuple[float, float] | None, n: int) -> str:
    return f" [{bounds[0]:.2f}, {bounds[1]:.2f}] n = {n}" if bounds else f" n = {n}"


def heatmap(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    href: Callable[[int, int], str] | None = None,
    cell: int = 34,
    label_width: int = 150,
    font_size: int = 11,
    values: bool = True,
) -> dict:
    """Confusion-matrix heatmap: rows = true class, columns = predicted; shade by row-normalised share.

    `values=False` is the compact form for many classes: no numbers in the cells, and only non-zero cells are
    drawn on a background of the zero shade (a 130-class matrix is mostly zeros). Column labels are rotated 60
    degrees; the drawing is wide enough for the last one and tall enough for the longest."""
    n = len(labels)
    gap = 6
    rows = [_label(lab, label_width - gap, font_size) for lab in labels]
    cos60, sin60 = 0.5, math.sqrt(3) / 2
    top = math.ceil(max((r["width"] for r in rows), default=0.0) * sin60 + font_size + gap)
    cells = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, value in enumerate(row):
            if not values and not value:
                continue
            share = value / total
            cells.append(
                {
                    "x": label_width + j * cell,
                    "y": top + i * cell,
                    "tx": label_width + j * cell + cell / 2,
                    "ty": top + i * cell + cell / 2 + 4,
                    "fill": _blend(share),
                    "ink": "#ffffff" if share > 0.5 else "#1b1b1b",
                    "text": (str(int(value)) if float(value).is_integer() else _fmt(value)) if values else "",
                    "title": f"true {labels[i]} → predicted {labels[j]}: {value:g} ({share:.0%} of row)",
                    "href": href(i, j) if href and value else None,
                    "diagonal": i == j,
                }
            )
    cols = [{**r, "x": label_width + j * cell + cell / 2 + font_size / 3, "y": top - gap} for j, r in enumerate(rows)]
    right = max([label_width + n * cell] + [c["x"] + c["width"] * cos60 + font_size * sin60 for c in cols])
    return {
        "width": math.ceil(right + 10),
        "height": top + n * cell + 10,
        "cell": cell,
        "cells": cells,
        "values": values,
        "font_size": font_size,
        "grid": {"x": label_width, "y": top, "size": n * cell, "fill": _blend(0.0)},
        "rows": [
            {**r, "x": label_width - gap, "y": top + i * cell + cell / 2 + font_size / 3} for i, r in enumerate(rows)
        ],
        "cols": cols,
    }


def _ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round ticks from lo to hi, about `count` steps; whole numbers only with `integer` (counts of labels)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    if integer:
        step = max(1, round(step))
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
    bands: Sequence[tuple[str, Sequence[tuple[float, float | None, float | None]], str]] = (),
    x_integer: bool = False,
) -> dict:
    """Lines with markers; `series` = [(name, [(x, y)...], colour)]. Points with y None are skipped. `x_integer`:
    x counts whole things (labels), so its ticks are whole numbers (one version at 397 labels read 396.5, 397.5).

    `bands` = [(name, [(x, low, high)...], colour)]: a shaded interval around a line (a polygon over each run of
    consecutive points that have both bounds) and a whisker at every such point, so a lone point shows its
    interval too. Points without bounds break the band (a version evaluated before intervals were recorded)."""
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
    shaded = []
    for name, pts, color in bands:
        runs: list[list[tuple[float, float, float]]] = [[]]
        for x, low, high in pts:
            if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
                runs.append([])
            else:
                runs[-1].append((x, low, high))
        polygons = [
            " ".join(f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in run)
            + " "
            + " ".join(f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(run))
            for run in runs
            if len(run) >= 2
        ]
        whiskers = [
            {"x": px(x), "y1": py(hi), "y2": py(lo), "title": f"{name}: {lo:.3f} to {hi:.3f} at {x:g}"}
            for run in runs
            for x, lo, hi in run
        ]
        shaded.append({"name": name, "color": color, "polygons": polygons, "whiskers": whiskers})
    return {
        "width": width,
        "height": height,
        "lines": lines,
        "bands": shaded,
        "x_ticks": [{"x": px(t), "y": top + ph + 16, "text": f"{t:g}"} for t in _ticks(x_lo, x_hi, integer=x_integer)],
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

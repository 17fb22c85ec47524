"""Intervals for the holdout metrics (training/ml/evaluate.py): Wilson for a proportion of items, a seeded
percentile bootstrap over items for everything else, and the headline rows that pages, API and model card show.

Bootstrap statistics take multiplicity weights [resamples, items], so one matrix product per block serves a whole
block of resamples: 1,000 resamples of a 10,000-item holdout cost well under a second.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from stats.proportions import wilson_interval

INTERVAL_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # seeded: the same predictions always give the same interval
# Below this many holdout items the pages show the cross-validated estimate beside the holdout figure. At n = 200
# the Wilson half-width at p = 0.8 is about +-5.5 points (1.96 * sqrt(0.8 * 0.2 / 200) = 0.055), already as wide
# as the gap between two strategies or backbones worth choosing between; below that the holdout alone cannot
# tell a better model from a lucky draw, and at 24 items the half-width is about +-16 points.
SMALL_HOLDOUT = 200
# A percentile bootstrap gives an interval from this many evaluated items on, for every score it bounds (macro- and
# micro-F1, Hamming accuracy, ROC-AUC, ECE, and the open-images estimate); below it the score shows its n and
# "no interval", beside the accuracy's Wilson interval, which holds at any n. The items are the unit resampled:
# images, for Hamming accuracy too (its classes within an image are not independent draws, so 2 images x 108
# classes is n = 2, not 216). A percentile interval never reaches past the items' own range: at n = 2 it is the
# two images' minimum and maximum, which hold the median of a symmetric score half the time (1 - 2 ** (1 - n)),
# whatever "95 %" says. Simulated coverage of the nominal 95 % interval (bench/bootstrap_small_n.py: a normal
# mean, a skewed per-image Hamming accuracy, a 4-class macro-F1 at 80 % accuracy; 1,000 holdouts each): n = 2:
# 48, 44, 24 %; n = 10: 90, 86, 79 %; n = 20: 93, 90, 93 %; n = 40: 94, 93, 95 %. From 20 items it covers about 9
# times in 10 on each; below, it claims a precision the holdout does not have (stop 57: a 2-image holdout showed
# Hamming accuracy "0.986 [0.981, 0.991] n = 2", its two images' scores).
MIN_BOOTSTRAP_N = 20
# Resamples x items per weight block: bounds the bootstrap's memory (16 MB of float64) on large holdouts.
_BLOCK_CELLS = 2_000_000
# ROC-AUC's bootstrap costs resamples x items x classes; above this budget it gets no interval (a large holdout
# needs none to be trusted, and the round must stay fast).
_AUC_BUDGET = 5_000_000
ECE_BINS = 15  # the one bin count of the one ECE (evaluate.calibration uses it too)
# The headline metrics, in the order the pages, the API and the model card show them.
HEADLINE = (
    ("accuracy", "accuracy"),
    ("subset_accuracy", "subset accuracy"),
    ("hamming_accuracy", "Hamming accuracy"),
    ("macro_f1", "macro-F1"),
    ("micro_f1", "micro-F1"),
    ("roc_auc", "ROC-AUC"),
    ("ece", "ECE"),
)


def widened_to_binomial(share: float, low: float, high: float, n: int) -> tuple[float, float]:
    """(low, high) of an estimated share of n widened, where narrower, to the Wilson interval of the count it implies.

    A percentile bootstrap of a count that is 0 (or n) in the sample is 0 in every resample: a label-error search
    that found no error in 105 labels said "0.0 % (95 % interval 0.0 % to 0.0 %)", where 0 of 105 is consistent
    with up to 3.5 %. The bootstrap stays where it is wider (it also resamples the search's thresholds)."""
    wilson = wilson_interval(round(share * n), n)
    if wilson is None:
        return low, high
    return min(low, wilson[0]), max(high, wilson[1])


def _weight_blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of n items as multiplicity weights [b, n] (how often each item was drawn), in blocks."""
    rng = np.random.default_rng(seed)
    per_block = max(1, min(resamples, _BLOCK_CELLS // max(n, 1)))
    done = 0
    while done < resamples:
        b = min(per_block, resamples - done)
        draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        weights = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b
        yield weights


def bootstrap_intervals(
    statistics: dict[str, Callable[[np.ndarray], np.ndarray]],
    n: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = INTERVAL_LEVEL,
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap intervals over n items, every statistic on the same resamples. A statistic maps
    weights [b, n] to b values (NaN where a resample cannot define it, e.g. one class for ROC-AUC); its interval
    is None when no resample defines it."""
    if n <= 0:
        return dict.fromkeys(statistics)
    values: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    for weights in _weight_blocks(n, resamples, seed):
        for name, statistic in statistics.items():
            values[name].append(statistic(weights))
    tail = 100 * (1 - level) / 2
    out: dict[str, tuple[float, float] | None] = {}
    for name, parts in values.items():
        finite = np.concatenate(parts)
        finite = finite[np.isfinite(finite)]
        if not len(finite):
            out[name] = None
            continue
        low, high = np.percentile(finite, [tail, 100 - tail])
        out[name] = (float(low), float(high))
    return out


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray], n: int, **kwargs: Any
) -> tuple[float, float] | None:
    """One statistic's percentile bootstrap interval (see bootstrap_intervals)."""
    return bootstrap_intervals({"value": statistic}, n, **kwargs)["value"]


def macro_f1_stat(truth: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Macro-F1 of a weighted resample over the classes present in it. truth, pred: 0/1 [n, C]."""
    truth, pred = truth.astype(np.float64), pred.astype(np.float64)
    both = truth * pred

    def stat(w: np.ndarray) -> np.ndarray:
        support, predicted, tp = w @ truth, w @ pred, w @ both
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(support > 0, 2 * tp / (support + predicted), np.nan)
            return np.nanmean(np.where(support > 0, f1, np.nan), axis=1) if f1.shape[1] else np.full(len(w), np.nan)

    return stat


def _group_sums(groups: np.ndarray, k: int, mask: np.ndarray | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """weights [b, n] -> [b, k]: the summed weight of the items in each group (group k of item i is groups[i]),
    counting only the items where mask holds. A sort and a reduceat: O(b * n) where a one-hot product is
    O(b * n * k)."""
    keep = np.arange(len(groups)) if mask is None else np.nonzero(mask)[0]
    order = keep[np.argsort(groups[keep], kind="stable")]
    present, starts = np.unique(groups[order], return_index=True)

    def sums(w: np.ndarray) -> np.ndarray:
        out = np.zeros((len(w), k))
        if len(order):
            out[:, present] = np.add.reduceat(w[:, order], starts, axis=1)
        return out

    return sums


def single_label_macro_f1_stat(y: np.ndarray, pred: np.ndarray, k: int) -> Callable[[np.ndarray], np.ndarray]:
    """macro_f1_stat for one class per item, without one-hot products (fast on many classes)."""
    support, predicted, hits = _group_sums(y, k), _group_sums(pred, k), _group_sums(y, k, mask=y == pred)

    def stat(w: np.ndarray) -> np.ndarray:
        s, p, tp = support(w), predicted(w), hits(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(s > 0, 2 * tp / (s + p), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(f1, axis=1)

    return stat


def micro_f1_stat(truth: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    tp = (truth * pred).sum(axis=1).astype(np.float64)
    size = (truth.sum(axis=1) + pred.sum(axis=1)).astype(np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = w @ size
            return np.where(denom > 0, 2 * (w @ tp) / denom, 0.0)

    return stat


def mean_stat(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    values = np.asarray(values, dtype=np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        return (w @ values) / w.sum(axis=1)

    return stat


def ece_stat(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> Callable[[np.ndarray], np.ndarray]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    member = np.zeros((len(confidence), bins))
    member[np.arange(len(confidence)), which] = 1.0
    gap = member * (np.asarray(correct, dtype=np.float64) - confidence)[:, None]

    def stat(w: np.ndarray) -> np.ndarray:
        return np.abs(w @ gap).sum(axis=1) / w.sum(axis=1)

    return stat


def auc_stat(truth: np.ndarray, scores: np.ndarray, classes: Sequence[int]) -> Callable[[np.ndarray], np.ndarray]:
    """Mean one-vs-rest ROC-AUC over the given classes, each a weighted Mann-Whitney count (ties count half)."""
    prepared = []
    for k in classes:
        s = scores[:, k]
        order = np.argsort(s, kind="stable")
        _, starts = np.unique(s[order], return_index=True)
        pos = truth[order, k].astype(np.float64)
        prepared.append((order, starts, pos, 1.0 - pos))

    def stat(w: np.ndarray) -> np.ndarray:
        aucs = np.full((len(w), len(prepared)), np.nan)
        for j, (order, starts, pos, neg) in enumerate(prepared):
            ws = w[:, order]
            gp = np.add.reduceat(ws * pos, starts, axis=1)
            gn = np.add.reduceat(ws * neg, starts, axis=1)
            below = np.cumsum(gn, axis=1) - gn
            denom = gp.sum(axis=1) * gn.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                aucs[:, j] = np.where(denom > 0, (gp * (below + 0.5 * gn)).sum(axis=1) / denom, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample with one class: no AUC, NaN
            return np.nanmean(aucs, axis=1)

    return stat


def auc_affordable(n: int, classes: int) -> bool:
    return BOOTSTRAP_RESAMPLES * n * classes <= _AUC_BUDGET


def interval_entry(bounds: tuple[float, float] | None, method: str) -> dict | None:
    return None if bounds is None else {"low": bounds[0], "high": bounds[1], "method": method}


# Stored by versions evaluated before such scores went without an interval: the accuracy's Wilson interval in
# another score's place. headline() reads it as no interval.
_BORROWED = "wilson-fallback"


def bootstrap_shown(n: Any) -> bool:
    """Whether a percentile bootstrap over n items gives an interval at all (MIN_BOOTSTRAP_N)."""
    return _finite(n) is not None and n >= MIN_BOOTSTRAP_N


def bootstrap_entries(boot: dict[str, tuple[float, float] | None], n: int) -> dict[str, dict | None]:
    """Interval entries of bootstrap results over n items: None below MIN_BOOTSTRAP_N items, and where every
    resample agrees (no error on a small holdout: 20 of 20 right gives macro-F1 [1, 1]), for every score alike, so
    the page says "no interval".

    Such F1 and Hamming scores once borrowed the accuracy's Wilson interval (method "wilson-fallback"): another
    statistic's interval, which read as the score's own (a 1-item multi-label holdout showed Hamming accuracy 0.833
    [0.000, 0.833]); the accuracy's own interval stands beside them."""
    shown = bootstrap_shown(n)
    return {
        key: interval_entry(bounds, "bootstrap")
        if shown and bounds is not None and bounds[1] - bounds[0] > 1e-12
        else None
        for key, bounds in boot.items()
    }


def intervals_block(n: int, **found: dict | None) -> dict:
    out: dict[str, Any] = {"level": INTERVAL_LEVEL, "n": n, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED}
    out.update({k: v for k, v in found.items() if v is not None})
    return out


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if np.isfinite(value) else None


def headline(metrics: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The headline rows of a metrics dict, each with its n and 95 % interval, for pages, API and model card.

    Rows: {key, label, value, n, low, high, method, level}. A dict stored before intervals were recorded (no
    `intervals` key) gives low = high = method = None; so does a metric the data could not bound, a stored
    "wilson-fallback" (the accuracy's interval, not the metric's: see bootstrap_entries) and a bootstrap interval
    stored over fewer than MIN_BOOTSTRAP_N items (before that rule). Malformed values read as None."""
    m = metrics if isinstance(metrics, dict) else {}
    intervals = m.get("intervals") if isinstance(m.get("intervals"), dict) else {}
    n = _finite(m.get("n"))
    rows = []
    for key, label in HEADLINE:
        if key not in m or (key == "accuracy" and m.get("multi_label")):
            continue  # multi-label "accuracy" repeats subset accuracy
        bound = intervals.get(key) if isinstance(intervals.get(key), dict) else {}
        low, high = _finite(bound.get("low")), _finite(bound.get("high"))
        # a bootstrap over too few items, stored before MIN_BOOTSTRAP_N, bounds nothing either
        too_few = bound.get("method") == "bootstrap" and n is not None and not bootstrap_shown(n)
        if low is None or high is None or bound.get("method") == _BORROWED or too_few:
            low = high = None
        rows.append(
            {
                "key": key,
                "label": label,
                "value": _finite(m.get(key)),
                "n": int(n) if n is not None else None,
                "low": low,
                "high": high,
                "method": bound.get("method") if low is not None and isinstance(bound.get("method"), str) else None,
                "level": _finite(intervals.get("level")),
            }
        )
    return rows

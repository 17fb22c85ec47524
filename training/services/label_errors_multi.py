"""The label-error search in a multi-label project (training.ml.label_search_multi judges; this runs it on the project).

Each class with at least MIN_LABELS_PER_CLASS labeled items with it and as many without it is a yes/no decision
judged on its own; a class whose out-of-sample model is too weak is named and left out. A suspect is one decision (a
class given that the model and the most similar labeled images find absent, or one missing that they find present);
an item's review task carries every suspect decision of the item, its score the most suspicious one's. The search
stores, per suspect item, {"decisions": [[class id, 1 given / 0 not given, probability the class is present, share of
the item's 10 most similar labeled images with it], ...]} (labeling.selectors.training_seam.suspect_decisions reads
it) and the estimated share of wrong decisions over items x judged classes, with a bootstrap interval.
"""

from __future__ import annotations

import math

import numpy as np

from labeling.constants import Progress
from labeling.models import Project
from labeling.selectors.training_seam import weak_class_note
from training.ml.intervals import SMALL_HOLDOUT, widened_to_binomial
from training.ml.label_search import MIN_LABELS_PER_CLASS, REPEAT_BUDGET, REPEATS
from training.models import LabelErrorStatus
from training.services.cross_validated import embedded_rows, estimate_folds, fold_stage, multi_label_estimate
from training.services.snapshot import LabelSnapshot


def _down(value: float, places: int = 4) -> float:
    return math.floor(value * 10**places) / 10**places


def _up(value: float, places: int = 4) -> float:
    return math.ceil(value * 10**places) / 10**places


def _weak_row(verdict, name: str, given: np.ndarray) -> list:
    """A weak class as LabelErrorSearch.weak_classes stores it (labeling.selectors.training_seam.weak_class_note reads
    it): [name, balanced accuracy, agreement], and where the class passed the balanced gate and failed the plain one,
    also the agreement needed and the share and name of the class's more common state. Rounded down (the figure
    needed up), so that a class just under a gate never reads as at it."""
    row = [name, _down(verdict.balanced), _down(verdict.agreement)]
    if verdict.agreement < verdict.needed and not verdict.balanced_weak:
        present = float(np.mean(given))
        row += [_up(verdict.needed), _down(max(present, 1.0 - present)), "present" if present > 0.5 else "absent"]
    return row


def _too_weak_reason(best: list, gate: float) -> str:
    """Why no class is judged, told by the class its model decides best on balance (a weak_classes row)."""
    return (
        f"The model is too weak to judge any class yet: a class needs {gate * 100:.0f} % of its decisions right on "
        f"balance out of sample, and in all clearly more than answering its more common state every time. The closest: "
        f"{weak_class_note(best)}. Label more, then search again."
    )


def multi_label_search(
    *, project: Project, snap: LabelSnapshot, folds: int, C: float, seed: int, progress: Progress
) -> dict:
    """The search's outcome as LabelErrorSearch fields (status, reason and the figures; `suspects` every suspect's
    details) and `scores`, the suspects' review tasks (item id -> score) for label_errors_find to write, {} when
    nothing is judged; `cross_validated` is the estimate the model pages show while the holdout is small."""
    from training.ml.label_search_multi import (
        MIN_BALANCED_ACCURACY,
        cross_val_present_probs,
        decision_error_interval,
        judge_multi_label,
        judged_classes,
    )

    rows = [*snap.train, *snap.holdout]
    names = snap.classes.names
    targets = np.zeros((len(rows), len(names)), dtype=bool)
    for r, (_, _, idx) in enumerate(rows):
        targets[r, list(idx)] = True
    judged = judged_classes(targets)
    with_class = targets.sum(axis=0)
    not_checked = [[names[c], int(with_class[c])] for c in np.setdiff1d(np.nonzero(with_class)[0], judged)]
    repeats = REPEATS if len(rows) * len(judged) <= REPEAT_BUDGET else 1
    # The page's bar: the estimate, each fold's fits, the judging; one job write each (the embeddings report their
    # own bar).
    estimating = len(snap.holdout) < SMALL_HOLDOUT
    first = estimate_folds(len(snap.train) + len(snap.holdout), folds) if estimating else 0
    steps = first + folds * repeats + 1

    embedding = [False]

    def step(done: int, total: int, stage: str) -> None:  # the estimate's own progress: its embeddings, its folds
        if stage == "embeddings":
            embedding[0] = True
            progress(done, total, stage)
        elif stage.startswith("cross-validated estimate: fold"):  # one bar step per fold
            embedding[0] = False
            progress(done, steps, stage)
        elif embedding[0]:  # back to this step once the embeddings are done
            embedding[0] = False
            progress(0, steps, "cross-validated estimate")

    estimate = None
    if estimating:
        progress(0, steps, "cross-validated estimate")
        estimate = multi_label_estimate(project=project, snap=snap, folds=folds, seed=seed, progress=step)
    common = {"labels": len(rows), "not_checked": not_checked, "cross_validated": estimate}
    if not len(judged):
        return {
            **common,
            "status": LabelErrorStatus.TOO_FEW,
            "reason": f"Too few labels to judge: the search needs a class on at least {MIN_LABELS_PER_CLASS} "
            f"labeled items and missing from at least {MIN_LABELS_PER_CLASS}, and no class is yet.",
        }
    features = embedded_rows(project, snap, rows, progress)
    what = f" {len(judged)} class{'es' if len(judged) != 1 else ''}"
    progress(first, steps, fold_stage(0, folds, repeats, what))

    def on_fold(done: int, total: int) -> None:  # the last fold's end is the judging's start
        stage = fold_stage(done, total // repeats, repeats, what) if done < total else "judging labels"
        progress(first + done, first + total + 1, stage)

    present = cross_val_present_probs(
        features, targets, judged, folds=folds, C=C, seed=seed, repeats=repeats, on_fold=on_fold
    )
    verdict = judge_multi_label(features, targets, present, judged)
    weak = [_weak_row(v, names[v.cls], targets[:, v.cls]) for v in verdict.verdicts if v.weak]
    common.update(weak_classes=weak, classes_judged=len(verdict.strong))
    if not verdict.strong:
        best = max(weak, key=lambda row: row[1])
        return {
            **common,
            "status": LabelErrorStatus.WEAK,
            "reason": _too_weak_reason(best, MIN_BALANCED_ACCURACY),
        }
    share = verdict.estimated_errors / verdict.decisions
    low, high = decision_error_interval(targets, present, judged, verdict, seed=seed)
    low, high = widened_to_binomial(share, low, high, verdict.decisions)
    class_ids = snap.classes.ids
    ids = [item_id for item_id, _, _ in rows]
    scores, details = {}, {}
    for s in verdict.suspects:  # most suspicious first: an item's first decision sets its score
        item_id = ids[s.row]
        scores.setdefault(item_id, round(s.score, 6))
        details.setdefault(str(item_id), {"decisions": []})["decisions"].append(
            [class_ids[s.cls], int(s.given), round(s.p_present, 4), round(s.near_present, 2)]
        )
    return {
        **common,
        "status": LabelErrorStatus.OK,
        "agreement": verdict.agreement,
        "estimated_share": share,
        "share_low": min(low, share),
        "share_high": max(high, share),
        "scores": scores,
        "suspects": details,
        "decisions_flagged": len(verdict.suspects),
    }

"""Reads for the label-quality page: annotator accuracy and agreement (the review queue's reads: selectors.reviews).

Annotator figures count every label the annotator gave and did not undo (a rejected label still counts against
them). Accuracy against reviews judges every such label on an item a review settled, whoever's label the verdict
was given on, against the label the reviews settled on (the rule of labeling.services.resolution): the latest
`correct` verdict's classes, else the classes of the latest accepted label that still counts. A label is right
when its class set equals that one (multi-label: the whole set). Where only rejects were given the item has no
settled label: a label with a rejected class set counts as wrong, any other as not reviewed. Accuracy against gold
compares the class set with the item's gold classes. Each accuracy carries its n (reviewed, gold_answers) and a
95 % Wilson interval: 0 right of 1 reviewed label is 0 % [0 %, 79 %], not a verdict on the annotator. Agreement uses
items labeled by at least two annotators (each annotator's newest label).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from django.contrib.auth import get_user_model

from labeling import metrics
from labeling.models import (
    Annotation,
    Item,
    LabelClass,
    Project,
    Review,
    Verdict,
)
from labeling.selectors.annotator_work import annotator_work
from labeling.selectors.classes import paths_attached
from labeling.selectors.reviews import review_task_counts
from stats.proportions import wilson_interval


def _labels(project: Project) -> tuple[list[tuple[int, int, int, float]], dict[int, frozenset[int]]]:
    """(annotation id, item id, user id, seconds) of every non-undone label; the class set of every annotation of
    the project (a reviewer's record of an imported label included: an accept of it settles the item)."""
    rows = list(
        annotator_work(Annotation.objects.filter(item__project=project).answers())
        .order_by("id")
        .values_list("id", "item_id", "user_id", "seconds_spent")
    )
    sets: dict[int, set[int]] = defaultdict(set)
    for annotation_id, class_id in Annotation.classes.through.objects.filter(
        annotation__item__project=project
    ).values_list("annotation_id", "labelclass_id"):
        sets[annotation_id].add(class_id)
    return rows, {pk: frozenset(classes) for pk, classes in sets.items()}


@dataclass
class _Settled:
    """What the reviews of one item say: the label they settled on (None: no verdict settled one) and the class
    sets a reject ruled out."""

    truth: frozenset[int] | None = None
    wrong: set[frozenset[int]] = field(default_factory=set)

    def judge(self, classes: frozenset[int]) -> bool | None:
        """Right, wrong, or None: the reviews say nothing about this label."""
        if self.truth is not None:
            return classes == self.truth
        return False if classes in self.wrong else None


def _settled(project: Project, sets: dict[int, frozenset[int]]) -> dict[int, _Settled]:
    """item id -> what its reviews settled, from every review of the project (one query, and one per 900 items
    whose label a correction settled)."""
    latest: dict[int, tuple[str, int, bool]] = {}  # annotation id -> (latest verdict, item id, undone)
    latest_correct: dict[int, int] = {}  # item id -> its latest `correct` review
    for review_id, annotation_id, item_id, verdict, undo_id in (
        Review.objects.filter(annotation__item__project=project)
        .order_by("created_at", "id")
        .values_list("id", "annotation_id", "annotation__item_id", "verdict", "annotation__undone_by")
    ):
        latest.pop(annotation_id, None)  # re-inserted: the dict's order is the order of each one's latest verdict
        latest[annotation_id] = (verdict, item_id, undo_id is not None)
        if verdict == Verdict.CORRECT:
            latest_correct[item_id] = review_id
    out: dict[int, _Settled] = defaultdict(_Settled)
    for annotation_id, (verdict, item_id, undone) in latest.items():
        if verdict == Verdict.ACCEPT and not undone:
            out[item_id].truth = sets.get(annotation_id, frozenset())  # later accepts overwrite earlier ones
        elif verdict == Verdict.REJECT:
            out[item_id].wrong.add(sets.get(annotation_id, frozenset()))
    corrected: dict[int, set[int]] = defaultdict(set)
    review_ids = list(latest_correct.values())
    for start in range(0, len(review_ids), 900):
        for review_id, class_id in Review.corrected_classes.through.objects.filter(
            review_id__in=review_ids[start : start + 900]
        ).values_list("review_id", "labelclass_id"):
            corrected[review_id].add(class_id)
    for item_id, review_id in latest_correct.items():  # a correction outranks any accept, as in resolution
        out[item_id].truth = frozenset(corrected.get(review_id, ()))
    return dict(out)


def _gold(project: Project) -> dict[int, frozenset[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for item_id, class_id in Item.gold_classes.through.objects.filter(
        item__project=project, item__is_gold=True
    ).values_list("item_id", "labelclass_id"):
        out[item_id].add(class_id)
    return {k: frozenset(v) for k, v in out.items()}


@dataclass
class AnnotatorRow:
    user_id: int
    username: str
    labels: int = 0
    median_seconds: float | None = None
    reviewed: int = 0
    review_accuracy: float | None = None
    review_interval: tuple[float, float] | None = None  # 95 % Wilson interval of review_accuracy (n = reviewed)
    gold_answers: int = 0
    gold_accuracy: float | None = None
    gold_interval: tuple[float, float] | None = None  # the same of gold_accuracy (n = gold_answers)
    peer_items: int = 0
    peer_agreement: float | None = None
    mean_kappa: float | None = None


@dataclass
class PairKappa:
    a: str
    b: str
    items: int
    kappa: float | None
    agreement: float


@dataclass
class ClassRow:
    label_class: LabelClass
    ratings: int
    kappa: float | None
    alpha: float | None
    specific_agreement: float | None


@dataclass
class QualityReport:
    annotators: list[AnnotatorRow]
    pairs: list[PairKappa]
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    items_multiply_labeled: int
    classes: list[ClassRow]
    review_counts: dict[str, int]


def _category(classes: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(classes))


def quality_report(*, project: Project) -> QualityReport:
    """Everything the label-quality page shows, from a handful of set-based queries."""
    rows, sets = _labels(project)
    settled = _settled(project, sets)
    gold = _gold(project)
    users = dict(get_user_model().objects.filter(pk__in={r[2] for r in rows}).values_list("pk", "username"))

    per_user: dict[int, AnnotatorRow] = {}
    seconds: dict[int, list[float]] = defaultdict(list)
    review_hits: dict[int, list[bool]] = defaultdict(list)
    gold_hits: dict[int, list[bool]] = defaultdict(list)
    newest: dict[tuple[int, int], int] = {}  # (item, user) -> newest annotation id
    for pk, item_id, user_id, secs in rows:
        row = per_user.setdefault(user_id, AnnotatorRow(user_id, users.get(user_id, f"user {user_id}")))
        row.labels += 1
        seconds[user_id].append(secs)
        newest[(item_id, user_id)] = pk
        hit = settled[item_id].judge(sets.get(pk, frozenset())) if item_id in settled else None
        if hit is not None:
            review_hits[user_id].append(hit)
        if item_id in gold:
            gold_hits[user_id].append(sets.get(pk, frozenset()) == gold[item_id])

    by_item: dict[int, dict[int, frozenset[int]]] = defaultdict(dict)
    for (item_id, user_id), pk in newest.items():
        by_item[item_id][user_id] = sets.get(pk, frozenset())
    shared = {item_id: labels for item_id, labels in by_item.items() if len(labels) >= 2}

    # Pairwise agreement and Cohen's kappa.
    pair_items: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    peer_hits: dict[int, list[bool]] = defaultdict(list)
    peer_item_count: dict[int, int] = defaultdict(int)
    for labels in shared.values():
        for u in labels:
            peer_item_count[u] += 1
        for u, v in combinations(sorted(labels), 2):
            same = labels[u] == labels[v]
            peer_hits[u].append(same)
            peer_hits[v].append(same)
            pair_items[(u, v)].append((_category(labels[u]), _category(labels[v])))
    pairs, user_kappas = [], defaultdict(list)
    for (u, v), values in pair_items.items():
        kappa = metrics.cohen_kappa([a for a, _ in values], [b for _, b in values]) if len(values) >= 2 else None
        agreement = sum(a == b for a, b in values) / len(values)
        pairs.append(PairKappa(per_user[u].username, per_user[v].username, len(values), kappa, agreement))
        if kappa is not None:
            user_kappas[u].append(kappa)
            user_kappas[v].append(kappa)
    pairs.sort(key=lambda p: (-p.items, p.a, p.b))

    for user_id, row in per_user.items():
        row.median_seconds = statistics.median(seconds[user_id]) if seconds[user_id] else None
        row.reviewed = len(review_hits[user_id])
        row.review_accuracy = _mean(review_hits[user_id])
        row.review_interval = wilson_interval(sum(review_hits[user_id]), row.reviewed)
        row.gold_answers = len(gold_hits[user_id])
        row.gold_accuracy = _mean(gold_hits[user_id])
        row.gold_interval = wilson_interval(sum(gold_hits[user_id]), row.gold_answers)
        row.peer_items = peer_item_count[user_id]
        row.peer_agreement = _mean(peer_hits[user_id])
        row.mean_kappa = float(np.mean(user_kappas[user_id])) if user_kappas[user_id] else None

    # Project-wide: Fleiss' kappa and Krippendorff's alpha over class sets; per class one-vs-rest.
    unit_ratings = [[_category(s) for s in labels.values()] for labels in shared.values()]
    counts, _ = metrics.counts_from_ratings(unit_ratings)
    fleiss = metrics.fleiss_kappa(counts) if len(counts) else None
    alpha = metrics.krippendorff_alpha_nominal(counts) if len(counts) else None
    class_rows = []
    for label_class in paths_attached(LabelClass.objects.filter(project=project, archived=False), project=project):
        binary = np.array(
            [
                [
                    sum(label_class.pk in s for s in labels.values()),
                    sum(label_class.pk not in s for s in labels.values()),
                ]
                for labels in shared.values()
            ],
            dtype=float,
        ).reshape(-1, 2)
        ratings = int(binary[:, 0].sum())
        class_rows.append(
            ClassRow(
                label_class=label_class,
                ratings=ratings,
                kappa=metrics.fleiss_kappa(binary) if len(binary) else None,
                alpha=metrics.krippendorff_alpha_nominal(binary) if len(binary) else None,
                specific_agreement=metrics.specific_agreement(binary, 0) if len(binary) else None,
            )
        )
    annotators = sorted(per_user.values(), key=lambda r: (-r.labels, r.username))
    return QualityReport(
        annotators=annotators,
        pairs=pairs,
        fleiss_kappa=fleiss,
        krippendorff_alpha=alpha,
        items_multiply_labeled=len(shared),
        classes=class_rows,
        review_counts=review_task_counts(project=project),
    )


def annotator_accuracy(*, project: Project, user) -> tuple[float | None, float | None]:
    """(accuracy against reviews, accuracy against gold) for one annotator; None where nothing was checked."""
    for row in quality_report(project=project).annotators:
        if row.user_id == user.pk:
            return row.review_accuracy, row.gold_accuracy
    return None, None


def _mean(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None

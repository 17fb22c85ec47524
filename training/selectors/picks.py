"""Strategy picks vs random picks: how often the model's suggestion was right on the labels made on each.

After the cold start the default strategy fills a share of each batch with uniform random draws
(`training.ml.ranking`); the scoring flags them (Item.picked_at_random) and a label made on one records it
(Annotation.picked_at_random). Labels on random draws estimate the model's accuracy on the unlabeled pool without
bias; the strategy's picks should be harder (a lower share right), which is what makes them worth labeling. Under
the "random" strategy every item the queue ranks is a random draw, so its labels count as random draws; labels
made before the strategy changed keep what they recorded (the "Strategy's picks" row then holds only those).

Rule: a label counts when it is live (not a skip, not an undo, not undone) on a train item that is not gold (the
holdout and gold items are served by their own rules, never by the ranking). Its suggestion is the latest stored
prediction of the item made before the label (Prediction.created_at), whatever the version; a label with no
earlier prediction is counted but left out of the share. The suggestion was right when its predicted class is the
label's class; in a multi-label project, when the classes it predicted (probability >= MULTI_LABEL_THRESHOLD, what
the labeling page preselects) are the label's classes, none missing and none extra (subset accuracy, as the model
page's figures).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, Subquery

from labeling.models import Annotation, Project, Split
from stats.proportions import wilson_interval
from training.ml.export_files import predicted_labels
from training.ml.ranking import draws_every_pick, random_share
from training.models import ModelVersion, Prediction
from training.selectors.quality import Figure

# A multi-label project's comparison reads each label's classes and its suggestion's probabilities in the web
# request: at most this many labels, the latest (10,000 suggestions of 100 classes: 0.35 s of parsing on this CPU).
MULTI_LABEL_READ = 10_000


@dataclass(frozen=True)
class PickGroup:
    """The labels made on one kind of pick: how many, and the share of those with a suggestion that were right."""

    key: str  # "random" | "strategy"
    label: str
    labels: int  # live labels made on items of this kind
    figure: Figure  # value = right / n, n = labels with an earlier prediction, Wilson 95 % interval
    right: int

    @property
    def percents(self) -> tuple[float, float, float] | None:
        """(share, low, high) in percent, or None without a label that had a suggestion."""
        f = self.figure
        if f.value is None or f.low is None or f.high is None:
            return None
        return 100 * f.value, 100 * f.low, 100 * f.high


@dataclass(frozen=True)
class PicksComparison:
    random: PickGroup
    strategy: PickGroup
    share_percent: int  # the share of each batch the project's strategy draws at random (100 under "random")
    latest: int | None = None  # set when only the latest this many labels were read (multi-label, MULTI_LABEL_READ)

    @property
    def draws(self) -> bool:
        return self.share_percent > 0

    @property
    def all_random(self) -> bool:
        """The project's strategy ("random") orders the whole pool at random: every pick is a random draw."""
        return self.share_percent >= 100

    @property
    def groups(self) -> list[PickGroup]:
        return [self.strategy, self.random]


def _group(key: str, label: str, labels: int, n: int, right: int) -> PickGroup:
    bounds = wilson_interval(right, n)
    figure = Figure(
        key=f"picks_{key}",
        label=label,
        value=right / n if n else None,
        n=n,
        low=bounds[0] if bounds else None,
        high=bounds[1] if bounds else None,
        method="wilson" if bounds else None,
    )
    return PickGroup(key=key, label=label, labels=labels, figure=figure, right=right)


def _single_label_counts(labels, shown) -> dict[bool, dict]:
    """{picked_at_random: {labels, n, right}} in one aggregate query."""
    labels = labels.annotate(shown=Subquery(shown.values("predicted_class_id")[:1])).annotate(
        right=Exists(
            Annotation.classes.through.objects.filter(annotation_id=OuterRef("pk"), labelclass_id=OuterRef("shown"))
        )
    )
    return {
        row["picked_at_random"]: row
        for row in labels.values("picked_at_random")
        .order_by()
        .annotate(
            labels=Count("pk"),
            n=Count("pk", filter=Q(shown__isnull=False)),
            right=Count("pk", filter=Q(right=True)),  # a label class never matches a missing suggestion
        )
    }


def _multi_label_counts(labels, shown) -> tuple[dict[bool, dict], bool]:
    """({picked_at_random: {labels, n, right}}, whether only the latest MULTI_LABEL_READ labels were read), comparing
    label sets: four queries, reading each label's classes and the probabilities of the predictions shown (a set
    cannot be compared in one portable aggregate), so the page reads a bounded number of them."""
    with_shown = labels.annotate(shown=Subquery(shown.values("pk")[:1]))
    rows = list(with_shown.order_by("-created_at", "-pk").values_list("pk", "picked_at_random", "shown")[
        : MULTI_LABEL_READ + 1
    ])  # fmt: skip
    capped = len(rows) > MULTI_LABEL_READ
    if capped:
        rows = rows[:MULTI_LABEL_READ]
        labels = labels.filter(pk__in=[pk for pk, _, _ in rows])
        with_shown = labels.annotate(shown=Subquery(shown.values("pk")[:1]))
    predictions = Prediction.objects.filter(pk__in=with_shown.values("shown"))  # a subquery: no list of ids
    probabilities = list(predictions.values_list("pk", "probabilities", "model_version_id"))
    order = dict(ModelVersion.objects.filter(pk__in={v for _, _, v in probabilities}).values_list("pk", "class_ids"))
    predicted = {pk: set(predicted_labels(probs, order[v])) for pk, probs, v in probabilities}
    given: dict[int, set[int]] = defaultdict(set)
    through = Annotation.classes.through.objects.filter(annotation_id__in=labels.values("pk"))
    for annotation_id, class_id in through.values_list("annotation_id", "labelclass_id"):
        given[annotation_id].add(class_id)
    counts: dict[bool, dict] = {}
    for pk, at_random, shown_pk in rows:
        c = counts.setdefault(at_random, {"labels": 0, "n": 0, "right": 0})
        c["labels"] += 1
        if shown_pk is not None:
            c["n"] += 1
            c["right"] += predicted.get(shown_pk) == given[pk]
    return counts, capped


def picks_comparison(*, project: Project) -> PicksComparison:
    """Counts for labels on random draws and on the strategy's picks: one aggregate query (four for a multi-label
    project, over its latest MULTI_LABEL_READ labels)."""
    shown = Prediction.objects.filter(item_id=OuterRef("item_id"), created_at__lt=OuterRef("created_at")).order_by(
        "-created_at", "-pk"
    )
    labels = Annotation.objects.filter(item__project=project, item__split=Split.TRAIN, item__is_gold=False).answers()
    capped = False
    if project.is_multi_label:
        rows, capped = _multi_label_counts(labels, shown)
    else:
        rows = _single_label_counts(labels, shown)
    empty = {"labels": 0, "n": 0, "right": 0}
    rand, strat = rows.get(True, empty), rows.get(False, empty)
    return PicksComparison(
        random=_group("random", "Random draws", rand["labels"], rand["n"], rand["right"]),
        strategy=_group("strategy", "Strategy's picks", strat["labels"], strat["n"], strat["right"]),
        share_percent=100 if draws_every_pick(project.al_strategy) else round(100 * random_share(project.al_strategy)),
        latest=MULTI_LABEL_READ if capped else None,
    )

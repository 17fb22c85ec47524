"""A percentile bootstrap over a handful of images bounds nothing: over 2 images it returns their minimum and maximum
("Hamming accuracy 0.986 [0.981, 0.991] n = 2", stop 57's tester). Below MIN_BOOTSTRAP_N (20) evaluated items every
bootstrap score (macro- and micro-F1, Hamming accuracy, ROC-AUC, ECE, the estimate on the open images) shows its n and
"no interval", on the model page, in the model-version table, in the API and in the model card alike, while the
accuracy keeps its Wilson interval; from 20 items on, the bootstrap's interval is shown."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from tests.factories import page_client, token_client
from tests.training.test_h55_metric_intervals import card_rows, stored_version
from training.ml.evaluate import evaluate, prediction_summary
from training.ml.intervals import MIN_BOOTSTRAP_N, headline
from training.ml.open_accuracy import open_accuracy

pytestmark = pytest.mark.django_db

SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]
BOOTSTRAPPED = ["hamming_accuracy", "micro_f1", "macro_f1"]


def two_image_multi_label() -> dict:
    """Two images: one labeled circle, square, triangle where the model finds circle and square (Hamming 5/6), one
    labeled circle where it finds circle (6/6). Subset accuracy 1/2 (Wilson [0.095, 0.905]), Hamming 11/12."""
    probs = np.array([[0.9, 0.8, 0.1, 0.1, 0.1, 0.1], [0.9, 0.1, 0.1, 0.1, 0.1, 0.1]])
    return evaluate(probs, [[0, 1, 2], [0]], SHAPES, multi_label=True)


def figure_text(html: str, metric: str) -> str:
    """The text of the first headline figure of `metric` in `html` (its value, interval or "no interval", n), its
    spaces collapsed (test_h55_metric_intervals' helper keeps the double spaces its tags leave)."""
    match = re.search(rf'<span class="figure" data-metric="{metric}">(.*?)</span></span>', html, re.S)
    assert match, metric
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def versions_row(html: str, number: int) -> str:
    row = html[html.index(f'id="version-{number}"') :]
    return row[: row.index("</tr>")]


def read_everywhere(project, version, names):
    engineer = project.memberships.get(role=Role.ML_ENGINEER).user
    html = page_client(engineer).get(reverse("training:model", args=[project.slug])).content.decode()
    body = token_client(engineer).get(f"/api/projects/{project.slug}/models/1/").json()
    listed = token_client(engineer).get(f"/api/projects/{project.slug}/models/").json()
    listed = listed["results"] if isinstance(listed, dict) else listed
    return html, body, {f["metric"]: f for f in listed[0]["headline"]}, card_rows(version, names)


def test_a_two_image_multi_label_holdout_has_no_bootstrap_interval_on_the_page_table_api_and_card(
    project_factory, label_class_factory, member_of
):
    # Given a multi-label version evaluated on a holdout of 2 images
    project = project_factory(task_type="multi")
    classes = [label_class_factory(project=project, name=name) for name in SHAPES]
    m = two_image_multi_label()
    assert (m["n"], m["hamming_accuracy"], m["subset_accuracy"]) == (2, 11 / 12, 0.5)
    version = stored_version(project, classes, m)
    member_of(project, Role.ML_ENGINEER, "mle")

    # When the ML engineer reads the model page, the API (detail and list) and the model card
    html, body, listed, card = read_everywhere(project, version, SHAPES)
    api = {f["metric"]: f for f in body["headline"]}

    # Then the subset accuracy keeps its Wilson interval for 1 of 2
    assert "[0.095, 0.905] n = 2" in figure_text(html, "subset_accuracy")
    assert (round(api["subset_accuracy"]["low"], 4), round(api["subset_accuracy"]["high"], 4)) == (0.0945, 0.9055)
    # and Hamming accuracy, micro- and macro-F1 say "no interval" (once the two images' min and max: [0.833, 1.000])
    assert figure_text(html, "hamming_accuracy") == "0.917 n = 2, no interval (all-absent scores 0.667)"
    for key in BOOTSTRAPPED:
        assert "n = 2, no interval" in figure_text(html, key)
        assert key not in body["metrics"]["intervals"]
        for row in (api[key], listed[key]):
            assert (row["n"], row["low"], row["high"], row["method"]) == (2, None, None, None)
        assert card[api[key]["label"]].endswith("| none | 2 | - |"), card[api[key]["label"]]
    assert "[0.833, 1.000]" not in html
    # the model-version table too
    assert "n = 2, no interval" in figure_text(versions_row(html, 1), "macro_f1")


def test_a_version_stored_with_a_bootstrap_interval_over_two_images_shows_none(
    project_factory, label_class_factory, member_of
):
    # Given a version evaluated before the rule, its Hamming accuracy stored with the two images' min and max as
    # its "interval" (stop 57's shape-scenes-multi v2)
    project = project_factory(task_type="multi")
    classes = [label_class_factory(project=project, name=name) for name in SHAPES]
    m = two_image_multi_label()
    m["intervals"].update(
        hamming_accuracy={"low": 0.98148, "high": 0.99074, "method": "bootstrap"},
        micro_f1={"low": 0.8, "high": 1.0, "method": "bootstrap"},
        macro_f1={"low": 0.6667, "high": 1.0, "method": "bootstrap"},
    )
    version = stored_version(project, classes, m)
    member_of(project, Role.ML_ENGINEER, "mle")

    # When it is read on the page, through the API and in its card
    html, body, listed, card = read_everywhere(project, version, SHAPES)
    api = {f["metric"]: f for f in body["headline"]}

    # Then none of those scores shows the stored interval
    assert "[0.981, 0.991]" not in html
    assert "[0.667, 1.000]" not in html
    for key in BOOTSTRAPPED:
        assert "n = 2, no interval" in figure_text(html, key)
        assert (api[key]["low"], api[key]["high"], api[key]["method"]) == (None, None, None)
        assert (listed[key]["low"], listed[key]["method"]) == (None, None)
        assert card[api[key]["label"]].endswith("| none | 2 | - |")
    assert "n = 2, no interval" in figure_text(versions_row(html, 1), "macro_f1")
    assert api["subset_accuracy"]["method"] == "wilson"


def hamming_holdout(n: int) -> dict:
    """n images of 2 classes, each labeled a; the model finds a on the first 10 (Hamming 1) and nothing on the rest
    (Hamming 1/2)."""
    probs = np.zeros((n, 2))
    probs[:10, 0] = 0.9
    return evaluate(probs, [[0]] * n, ["a", "b"], multi_label=True)


def test_the_bootstrap_gives_hamming_accuracy_an_interval_from_20_images_on():
    assert MIN_BOOTSTRAP_N == 20
    # Given 20 images, 10 scoring Hamming 1 and 10 scoring 1/2: the mean is 0.5 + k / 40 for k of 20 resampled
    # images scoring 1, k ~ Binomial(20, 1/2), whose 2.5 % and 97.5 % points are 6 and 14
    m = hamming_holdout(20)
    rows = {row["key"]: row for row in headline(m)}
    assert m["hamming_accuracy"] == 0.75
    assert (rows["hamming_accuracy"]["low"], rows["hamming_accuracy"]["high"]) == pytest.approx((0.65, 0.85))
    assert rows["hamming_accuracy"]["method"] == "bootstrap"
    # micro-F1 is 2k / (20 + k): 12/26 and 28/34
    assert (rows["micro_f1"]["low"], rows["micro_f1"]["high"]) == pytest.approx((12 / 26, 28 / 34))

    # Given one image fewer, the bootstrap scores have none, and the subset accuracy keeps Wilson's for 10 of 19
    m = hamming_holdout(19)
    rows = {row["key"]: row for row in headline(m)}
    for key in ("hamming_accuracy", "micro_f1", "macro_f1"):
        assert (rows[key]["n"], rows[key]["low"], rows[key]["high"], rows[key]["method"]) == (19, None, None, None)
    subset = rows["subset_accuracy"]
    assert (round(subset["low"], 4), round(subset["high"], 4), subset["method"]) == (0.3171, 0.7267, "wilson")


def single_label_holdout(n: int) -> dict:
    """n items of 3 classes in turn, every fourth one predicted as the next class."""
    y = np.arange(n) % 3
    pred = np.where(np.arange(n) % 4 == 3, (y + 1) % 3, y)
    probs = np.full((n, 3), 0.15)
    probs[np.arange(n), pred] = 0.7
    return evaluate(probs, y.tolist(), ["a", "b", "c"])


@pytest.mark.parametrize(("n", "bounded"), [(2, False), (8, False), (19, False), (20, True), (40, True)])
def test_single_label_macro_f1_roc_auc_and_ece_follow_the_same_rule(n, bounded):
    m = single_label_holdout(n)
    rows = {row["key"]: row for row in headline(m)}
    assert rows["accuracy"]["method"] == "wilson"
    for key in ("macro_f1", "roc_auc", "ece"):
        row = rows[key]
        if bounded:
            assert row["method"] == "bootstrap"
            assert row["low"] <= row["value"] <= row["high"], row
        else:
            assert (row["low"], row["high"], row["method"]) == (None, None, None), row
            assert key not in m["intervals"]


def test_the_cross_validated_estimate_and_the_open_images_from_12_labels_have_no_bootstrap_interval(
    project_factory, label_class_factory, member_of
):
    # Given the estimate on the open images computed from 12 labeled items, 9 right
    labels = np.arange(12) % 3
    probs = np.full((12, 3), 0.1)
    top = np.where(np.arange(12) % 4 == 3, (labels + 1) % 3, labels)
    probs[np.arange(12), top] = np.linspace(0.5, 0.95, 12)
    opened = open_accuracy(probs, labels, np.full((5, 30), 0.8))
    # Then it has no interval (200 refits over 12 labels)
    assert (opened["n"], opened["low"], opened["high"], opened["method"]) == (12, None, None, None)
    assert open_accuracy(np.tile(probs, (2, 1)), np.tile(labels, 2), np.full((5, 30), 0.8))["method"] == "bootstrap"

    # Given a small-holdout version and a search of that time stored before the rule, whose estimate on the open
    # images over 12 labels carries a bootstrap interval
    project = project_factory()
    classes = [label_class_factory(project=project, name=name) for name in ("a", "b", "c")]
    version = stored_version(project, classes, single_label_holdout(8))
    member_of(project, Role.ML_ENGINEER, "mle")
    stored = {"accuracy": 0.8, "low": 0.6, "high": 0.9, "n": 12, "images": 30, "of": 30, "method": "bootstrap"}
    cv = {**prediction_summary(labels, top, ["a", "b", "c"]), "folds": 5, "pool": 30, "open_images": stored}
    Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED,
                       result={"status": "ok", "cross_validated": cv})  # fmt: skip

    # When the ML engineer reads the model page and the card
    html, _, _, card = read_everywhere(project, version, ["a", "b", "c"])

    # Then the out-of-fold macro-F1 and the estimate on the open images say "no interval" beside their n
    estimate = html[html.index('id="cv-estimate"') :]
    assert "[0.468, 0.911] n = 12" in figure_text(estimate, "accuracy")  # Wilson for 9 of 12
    assert "n = 12, no interval" in figure_text(estimate, "macro_f1")
    assert "n = 12, no interval" in figure_text(html[html.index('id="cv-open"') :], "open_accuracy")
    assert "[0.600, 0.900]" not in html
    assert card["accuracy on the open images (estimated; 30 scored)"].endswith("| none | 12 | - |")
    assert card["macro-F1 (out of fold)"].endswith("| none | 12 | - |")

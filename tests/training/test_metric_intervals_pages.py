"""What a reviewer reads on the model and model-quality pages and through the API: each headline figure with its
n and 95 % interval, the classes without holdout support by name, the cross-validated estimate beside a small
holdout, the interval band of the learning curve, and versions stored before intervals were recorded."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from tests.factories import token_client
from training.ml.evaluate import evaluate, prediction_summary
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

NAMES = ["a", "b", "c", "d"]
# Eight holdout items, none of class d: accuracy 5/8, Wilson [0.306, 0.863].
Y = [0, 0, 0, 1, 1, 2, 2, 2]
PRED = [0, 0, 1, 1, 0, 2, 2, 3]


def probs_for(pred: list[int]) -> np.ndarray:
    out = np.full((len(pred), len(NAMES)), 0.1)
    out[np.arange(len(pred)), pred] = 0.7
    return out


@pytest.fixture
def metrics_world(project_factory, label_class_factory, member_of):
    """v1 stored before intervals were recorded, v2 and v3 (active) evaluated on an 8-item holdout."""
    project = project_factory()
    classes = [label_class_factory(project=project, name=n) for n in NAMES]
    ids = [c.pk for c in classes]
    legacy = {"accuracy": 0.5, "macro_f1": 0.4, "ece": 0.1, "n": 6}
    better = [0, 0, 0, 1, 0, 2, 2, 2]
    for number, metrics, labels in (
        (1, legacy, 20),
        (2, evaluate(probs_for(PRED), Y, NAMES), 40),
        (3, evaluate(probs_for(better), Y, NAMES), 60),
    ):
        ModelVersion.objects.create(
            project=project, number=number, artifact_path="x", architecture="lite0", class_ids=ids,
            metrics=metrics, label_count=labels, active=number == 3,
        )  # fmt: skip
    return {"project": project, "viewer": member_of(project, Role.ML_ENGINEER, "mle"), "classes": classes}


def search_reported(project, n: int = 40) -> None:
    """A finished label-error search whose result carries its out-of-fold estimate over n labeled items."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.8, y, (y + 1) % 3)
    Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED,
        result={"status": "too_few", "cross_validated": {**prediction_summary(y, pred, NAMES), "folds": 5}},
    )  # fmt: skip


def test_model_page_shows_n_the_interval_the_absent_class_and_the_cross_validated_estimate(client, metrics_world):
    # Given an active version evaluated on 8 holdout items and a label-error search over 40 labeled items
    project = metrics_world["project"]
    search_reported(project)
    client.force_login(metrics_world["viewer"])

    # When the ML engineer opens the model page
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()

    # Then the active version's accuracy comes with its Wilson interval and n
    active = html[html.index('id="active-metrics"') :]
    assert "0.875" in active  # 7 of 8
    assert "[0.529, 0.978] n = 8" in active
    # the class with no holdout item is named
    assert re.search(r'id="no-support">.*<strong><bdi>d</bdi></strong>', active)
    # the small holdout gets the cross-validated estimate beside it, clearly named
    assert "Small holdout:" in active
    assert "Cross-validated over 40 labeled items" in active
    # and a version stored before intervals shows its n and says it has no interval, rather than failing
    row = html[html.index('id="version-1"') :]
    row = row[: row.index("</tr>")]
    assert "0.500" in row
    assert "n = 6, no interval (evaluated before intervals were recorded)" in row
    assert "[0.306, 0.863] n = 8" in html  # v2's accuracy in the versions table
    assert "{#" not in html  # no template comment leaks into the page


def test_small_holdout_without_a_search_says_the_estimate_is_missing(client, metrics_world):
    client.force_login(metrics_world["viewer"])
    html = client.get(reverse("training:model", args=[metrics_world["project"].slug])).content.decode()
    assert 'id="cv-missing"' in html
    assert "Cross-validated over" not in html


def test_large_holdout_shows_no_cross_validated_estimate(client, metrics_world):
    project = metrics_world["project"]
    search_reported(project)
    y = [k % 3 for k in range(300)]
    ModelVersion.objects.filter(project=project, number=3).update(metrics=evaluate(probs_for(y), y, NAMES))
    client.force_login(metrics_world["viewer"])
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert "n = 300" in html
    assert 'id="cross-validated"' not in html


def test_quality_page_shows_intervals_absent_classes_and_the_learning_curve_band(client, metrics_world):
    project = metrics_world["project"]
    search_reported(project)
    client.force_login(metrics_world["viewer"])
    html = client.get(reverse("training:model_quality", args=[project.slug]) + "?v=2").content.decode()

    headline = html[html.index('id="headline"') :]
    assert re.search(r'id="m-accuracy">0\.625</b>accuracy<br><span class="ci[^>]*>\[0\.306, 0\.863\] n = 8', headline)
    assert re.search(r'id="m-macro-f1">0\.656</b>', headline)  # over a, b and c; counting d as 0 gave 0.492
    assert "No holdout item of: <strong><bdi>d</bdi></strong>" in html
    # The search ran after v3 was made: its estimate is v3's, not v2's
    assert "Cross-validated over 40 labeled items" not in html
    v3 = client.get(reverse("training:model_quality", args=[project.slug]) + "?v=3").content.decode()
    assert "Cross-validated over 40 labeled items" in v3
    # The learning curve: a band over v2 and v3 (v1 has no interval), a whisker at each of them, the two lines
    chart = html[html.index('id="learning-curve"') :]
    assert chart.count("<polygon") == 1
    assert chart.count('class="whisker"') == 2
    assert chart.count("<polyline") == 2
    assert "{#" not in html


def test_quality_page_of_a_version_stored_before_intervals(client, metrics_world):
    client.force_login(metrics_world["viewer"])
    response = client.get(reverse("training:model_quality", args=[metrics_world["project"].slug]) + "?v=1")
    assert response.status_code == 200
    assert "n = 6, no interval (evaluated before intervals were recorded)" in response.content.decode()


def test_compare_page_puts_intervals_beside_both_versions(client, metrics_world):
    client.force_login(metrics_world["viewer"])
    url = reverse("training:model_compare", args=[metrics_world["project"].slug])
    html = client.get(url + "?a=2&b=3").content.decode()
    summary = html[html.index('id="compare-summary"') :]
    assert "[0.306, 0.863] n = 8" in summary
    assert "[0.529, 0.978] n = 8" in summary


def test_api_gives_each_headline_figure_with_n_and_interval(metrics_world):
    project = metrics_world["project"]
    client = token_client(metrics_world["viewer"])

    body = client.get(f"/api/projects/{project.slug}/models/2/").json()
    figures = {f["metric"]: f for f in body["headline"]}
    assert body["interval_recorded"] is True
    assert body["no_support"] == ["d"]
    assert figures["accuracy"]["value"] == pytest.approx(0.625)
    assert (figures["accuracy"]["low"], figures["accuracy"]["high"]) == pytest.approx((0.3057, 0.8632), abs=1e-4)
    assert (figures["accuracy"]["n"], figures["accuracy"]["method"]) == (8, "wilson")
    # 8 items are too few for a bootstrap interval (MIN_BOOTSTRAP_N, 20): macro-F1 has none
    assert (figures["macro_f1"]["n"], figures["macro_f1"]["low"], figures["macro_f1"]["method"]) == (8, None, None)

    legacy = client.get(f"/api/projects/{project.slug}/models/1/").json()
    assert legacy["interval_recorded"] is False
    assert [(f["metric"], f["n"], f["low"]) for f in legacy["headline"]] == [
        ("accuracy", 6, None), ("macro_f1", 6, None), ("ece", 6, None),
    ]  # fmt: skip
    listed = client.get(f"/api/projects/{project.slug}/models/").json()["results"]
    assert {row["number"]: row["interval_recorded"] for row in listed} == {1: False, 2: True, 3: True}


def colour_png(rgb: tuple[int, int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30), "grey": (128, 128, 128)}


def colour_project(project_factory, member_of, settings, per_class: dict[str, int]):
    """A project labeled per_class[name] times in each colour class, and a first version on a tiny holdout."""
    settings.LABELLOOP_ROUND_OVERRIDES = {"num_workers": 0, "score_batch_size": 64}
    project = project_factory(image_size=32)
    manager = member_of(project, Role.MANAGER, "boss")
    classes = [project.classes.create(name=n, order=k) for k, n in enumerate(COLOURS)]
    for k, (name, rgb) in enumerate(COLOURS.items()):
        for j in range(per_class.get(name, 0)):
            item = item_create_from_bytes(project=project, name=f"{k}-{j}.png", data=colour_png(rgb, 10 * k + j))
            annotation_create(item=item, user=manager, class_ids=[classes[k].pk])
    names = list(COLOURS)
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="lite0", class_ids=[c.pk for c in classes],
        metrics=evaluate(np.eye(4)[[0, 1]] * 0.8 + 0.05, [0, 1], names), label_count=sum(per_class.values()),
        active=True,
    )  # fmt: skip
    return project, manager


def run_search(client, project, manager, capture) -> Job:
    client.force_login(manager)
    with capture(execute=True):
        client.post(reverse("training:label_errors_find", args=[project.slug]))
    job = Job.objects.get(project=project, kind=JobKind.LABEL_ERRORS)
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def test_the_label_error_search_stores_the_cross_validated_estimate_the_page_shows(
    client, project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    # Given 18 labels in three colour classes (too few for the label-error search to judge labels), one grey label
    # (a class too thin to cross-validate, 1 label in 19) and a first version evaluated on a tiny holdout
    counts = {"red": 6, "blue": 6, "green": 6, "grey": 1}
    project, manager = colour_project(project_factory, member_of, settings, counts)

    # When the search runs (as it does after every new version)
    job = run_search(client, project, manager, django_capture_on_commit_callbacks)

    # Then its result carries the out-of-fold accuracy with n and interval, and the model page shows it
    cv = job.result["cross_validated"]
    assert cv["n"] == 19
    # ... and it is about the colours: every colour label is predicted right, and only the lone grey one cannot be
    # (no fold trains on grey). The search's own logistic regression read 0.79 here (its strong L2, tuned on thousands
    # of labels, lets the folds' class shares weigh in), and plain folds 0.53; the version's head reads 18 of 19.
    assert cv["accuracy"] == pytest.approx(18 / 19), cv
    assert cv["intervals"]["accuracy"]["low"] <= cv["accuracy"] <= cv["intervals"]["accuracy"]["high"]
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert "Cross-validated over 19 labeled items" in html
    assert re.search(r'id="cv-method">Out-of-fold predictions \(5-fold\) of the head a version trains on', html)
    assert "No holdout item of: <strong><bdi>green</bdi>, <bdi>grey</bdi></strong>" in html


def test_with_a_few_labels_in_every_class_the_page_says_why_there_is_no_estimate_instead_of_one_far_too_low(
    client, project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    # Given 3 labels in each of four classes (12 labels: every fold would train on 2 of a class, or fewer)
    project, manager = colour_project(
        project_factory, member_of, settings, {"red": 3, "blue": 3, "green": 3, "grey": 3}
    )

    # When the search runs
    job = run_search(client, project, manager, django_capture_on_commit_callbacks)

    # Then it reports no estimate, and the model page says what it waits for
    assert job.result.get("cross_validated") is None
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert "Cross-validated over" not in html
    assert re.search(r'id="cv-missing">[^<]*at least 5 labels', html)


def embed_the_pool(project) -> int:
    """What every round does first: the open items' embeddings into the project's feature store."""
    from training.constants import project_cache_dir
    from training.ml.embeddings import EmbeddingStore
    from training.models import RunMode
    from training.services.rounds import round_config
    from training.services.snapshot import label_snapshot

    snap = label_snapshot(project=project)
    cfg = round_config(project=project, classes=snap.classes, mode=RunMode.HEAD)
    EmbeddingStore(project_cache_dir(project)).compute([i for i, _ in snap.pool], [p for _, p in snap.pool], cfg)
    return len(snap.pool)


def add_open_items(project, per_colour: int) -> None:
    for k, rgb in enumerate(COLOURS.values()):
        for j in range(per_colour):
            item_create_from_bytes(project=project, name=f"open-{k}-{j}.png", data=colour_png(rgb, 1000 + 10 * k + j))


def test_the_estimate_self_trains_each_fold_on_a_sample_of_the_open_items_a_round_embedded(
    client, project_factory, member_of, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # Given 18 colour labels, 48 new items (12 per colour), and a round that embedded those open items
    monkeypatch.setattr("training.services.cross_validated.CROSS_VALIDATED_POOL_MAX", 30)
    project, manager = colour_project(project_factory, member_of, settings, {"red": 6, "blue": 6, "green": 6})
    add_open_items(project, 12)
    assert embed_the_pool(project) > 30  # the rest went to the holdout

    # When the search runs
    cv = run_search(client, project, manager, django_capture_on_commit_callbacks).result["cross_validated"]

    # Then each fold's head learned from a sample of 30 of them (the cap), as a version learns from its pool
    assert cv["pool"] == 30
    assert cv["accuracy"] == 1.0
    # ... and scored them: the estimate on the open images, every label right so far, with its Wilson interval
    opened = cv["open_images"]
    assert opened["images"] == 30
    assert opened["n"] == 18
    assert opened["of"] == embed_the_pool(project)
    assert opened["accuracy"] == 1.0
    assert opened["low"] == pytest.approx(0.824, abs=0.001)
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert "self-trained on 30 unlabeled images" in html
    line = re.search(r'id="cv-open">(.*?)</p>', html, re.S).group(1)
    assert "Estimated on the open images: accuracy" in line
    assert "1.000" in line
    assert "[0.824, 1.000] n = 18" in line
    assert "Wilson" in line  # every label right: the interval is Wilson's, and the page says so
    assert f"(30 of {opened['of']} open images scored)" in line
    # ... and the page says why both figures are there: labels the queue chose for being unsure read low
    assert "reads below the model's accuracy on the open images" in html
    assert "at equal confidence a head is as often right on an open image" in html


def test_the_estimate_uses_no_pool_where_the_rounds_do_not_self_train_or_nothing_is_embedded(
    client, project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    # Given open items nobody embedded yet
    project, manager = colour_project(project_factory, member_of, settings, {"red": 6, "blue": 6, "green": 6})
    add_open_items(project, 4)

    # When the search runs, it embeds nothing for the estimate and says it used no pool
    cv = run_search(client, project, manager, django_capture_on_commit_callbacks).result["cross_validated"]
    assert cv["pool"] == 0
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert "of the head a version trains on the backbone" in html
    # ... and, with no open image scored, it estimates nothing on them
    assert "open_images" not in cv
    assert 'id="cv-open"' not in html

    # And where the project's rounds do not self-train, an embedded pool is not used either
    embed_the_pool(project)
    settings.LABELLOOP_ROUND_OVERRIDES = {**settings.LABELLOOP_ROUND_OVERRIDES, "self_training": False}
    Job.objects.filter(project=project).delete()
    again = run_search(client, project, manager, django_capture_on_commit_callbacks)
    assert again.result["cross_validated"]["pool"] == 0


def test_a_search_made_before_the_active_version_is_not_shown_as_its_estimate(client, metrics_world):
    # Given a label-error search reported for v3, then v4 trained on another backbone and made active
    project = metrics_world["project"]
    search_reported(project)
    v3 = ModelVersion.objects.get(project=project, number=3)
    ModelVersion.objects.filter(pk=v3.pk).update(active=False)
    ModelVersion.objects.create(
        project=project, number=4, artifact_path="x", architecture="lite2", class_ids=v3.class_ids,
        metrics=v3.metrics, label_count=60, active=True,
    )  # fmt: skip
    client.force_login(metrics_world["viewer"])

    # When the model page is opened before v4's own search has run
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()

    # Then v3's out-of-fold figure is not shown as v4's
    assert "Cross-validated over 40 labeled items" not in html

"""A multi-label project's small holdout gets the cross-validated estimate beside it, as a single-label one's does:
the label-error search computes the out-of-fold figures the holdout shows, also while it has too few labels to judge
any, and the model page, the API, the command and the model card carry them with n and 95 % intervals."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from labeling.models import Job, JobKind, Role
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from tests.factories import token_client
from tests.training.test_metric_intervals_pages import COLOURS, run_search
from training.ml.evaluate import evaluate
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

NAMES = list(COLOURS)


def two_colour_png(left: tuple[int, int, int], right: tuple[int, int, int], seed: int) -> bytes:
    """A 32 x 32 image, its left half one colour and its right half another (the same colour for a one-class item),
    with pixel noise."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((32, 32, 3))
    pixels[:, :16], pixels[:, 16:] = left, right
    pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def multi_label_project(project_factory, member_of, settings, pairs: list[tuple[str, ...]]):
    """A multi-label colour project whose k-th item shows the colours pairs[k] and is labeled with them, and a first
    version evaluated on a 2-item holdout."""
    settings.LABELLOOP_ROUND_OVERRIDES = {"num_workers": 0, "score_batch_size": 64}
    project = project_factory(image_size=32, task_type="multi")
    manager = member_of(project, Role.MANAGER, "boss")
    classes = {name: project.classes.create(name=name, order=k) for k, name in enumerate(NAMES)}
    for k, pair in enumerate(pairs):
        left, right = COLOURS[pair[0]], COLOURS[pair[-1]]
        item = item_create_from_bytes(project=project, name=f"{k}.png", data=two_colour_png(left, right, k))
        annotation_create(item=item, user=manager, class_ids=[classes[name].pk for name in pair])
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="lite0", class_ids=[c.pk for c in classes.values()],
        metrics=evaluate(np.array([[0.9, 0.8, 0.1, 0.1], [0.1, 0.2, 0.9, 0.1]]), [[0, 1], [2]], NAMES,
                         multi_label=True),
        label_count=len(pairs), active=True,
    )  # fmt: skip
    return project, manager


# Six items of each one-colour class and of each of three two-colour pairs: 42 labels, every class in 12 or more.
PAIRS = [(c,) for c in NAMES for _ in range(6)] + [p for p in (("red", "blue"), ("green", "grey"), ("red", "grey"))
                                                    for _ in range(6)]  # fmt: skip


def test_the_search_of_a_multi_label_project_stores_the_out_of_fold_figures_the_pages_show(
    client, project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    # Given a multi-label project with 42 labeled items and a first version on a 2-item holdout
    project, manager = multi_label_project(project_factory, member_of, settings, PAIRS)

    # When the label-error search runs (as after every new version)
    job = run_search(client, project, manager, django_capture_on_commit_callbacks)

    # Then it judges no label (no class is on 20 items yet) but reports the holdout's figures out of fold, over every
    # label
    assert job.result["status"] == "too_few"
    cv = job.result["cross_validated"]
    assert cv["multi_label"] is True
    assert (cv["n"], cv["folds"], cv["pool"]) == (len(PAIRS), 5, 0)
    # ... and they are about the colours: a head that never saw an item names its colours
    assert cv["subset_accuracy"] == cv["accuracy"] >= 0.8, cv
    assert min(cv["hamming_accuracy"], cv["macro_f1"], cv["micro_f1"]) >= 0.9, cv
    for key in ("subset_accuracy", "hamming_accuracy", "macro_f1", "micro_f1"):
        bound = cv["intervals"][key]
        assert bound["low"] <= cv[key] <= bound["high"], (key, bound)

    # ... the model page shows each of them with its interval and n, where it said there was none before
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    line = re.search(r'id="cv-estimate">(.*?)</p>', html, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", line))
    assert f"Cross-validated over {len(PAIRS)} labeled items: subset accuracy {cv['subset_accuracy']:.3f}" in text
    for label, key in (("Hamming accuracy", "hamming_accuracy"), ("macro-F1", "macro_f1"), ("micro-F1", "micro_f1")):
        assert f"{label} {cv[key]:.3f} [{cv['intervals'][key]['low']:.3f}, " in text, (label, text)
    assert f"n = {len(PAIRS)}" in text
    assert 'id="cv-missing"' not in html
    # ... and the settings table does not claim a self-training head: a multi-label head learns from the labels alone
    assert "a linear head on cached embeddings (on the labels alone" in html
    assert "also learns from the unlabeled images" not in html
    # ... and the versions table names its accuracy for what it is
    assert "<th>Subset accuracy <span" in html
    # ... nor let "suggestion right" pass for the whole label set
    assert "exactly the classes given" in html

    # ... the quality page shows the estimate too, and names the learning curve's accuracy for what it is
    quality = client.get(reverse("training:model_quality", args=[project.slug])).content.decode()
    assert f"Cross-validated over {len(PAIRS)} labeled items" in quality
    assert "holdout subset accuracy" in quality
    assert "subset accuracy's 95 % interval" in quality

    # ... and the label-error page says why nothing is judged yet
    page = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    assert "the search needs a class on at least 20 labeled items and missing from at least 20" in page
    assert "Search for label errors now" in page

    # ... the API carries them
    api = token_client(manager)
    body = api.get(f"/api/projects/{project.slug}/label-errors/").json()["cross_validated"]
    assert body["multi_label"] is True
    assert body["n"] == len(PAIRS)
    assert body["accuracy"]["value"] == pytest.approx(cv["subset_accuracy"])
    assert body["micro_f1"]["value"] == pytest.approx(cv["micro_f1"])
    assert body["hamming_accuracy"]["low"] == pytest.approx(cv["intervals"]["hamming_accuracy"]["low"])


def test_a_multi_label_project_with_a_thin_class_says_why_there_is_no_estimate(
    client, project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    # Given 12 labeled items, 4 of them in a two-colour pair, and grey on 2 of the 16 labels (fewer than the folds)
    pairs = [("red",)] * 5 + [("blue",)] * 3 + [("red", "blue")] * 2 + [("green", "grey")] * 2
    project, manager = multi_label_project(project_factory, member_of, settings, pairs)

    # When the search runs, then there is no estimate (each fold would train without most of grey and green) ...
    job = run_search(client, project, manager, django_capture_on_commit_callbacks)
    assert job.result["status"] == "too_few"
    assert job.result.get("cross_validated") is None
    # ... the job's line counts the labels it looked at
    assert job.result["labels"] == len(pairs)
    # ... and the model page says what it waits for
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert re.search(r'id="cv-missing">[^<]*at least 5 labels', html)


def test_the_command_and_the_model_card_carry_the_multi_label_estimate(project_factory, member_of, settings, capsys):
    # Given the multi-label colour project
    project, _ = multi_label_project(project_factory, member_of, settings, PAIRS)

    # When an ML engineer runs the search from the command line
    call_command("label_errors", project.slug)
    out = capsys.readouterr().out
    cv = Job.objects.get(project=project, kind=JobKind.LABEL_ERRORS).result["cross_validated"]

    # Then it says why no label was judged yet, and prints every out-of-fold figure with its interval and n
    assert "too_few. Too few labels to judge: the search needs a class on at least 20 labeled items" in out
    low = cv["intervals"]["subset_accuracy"]["low"]
    assert f"Cross-validated over 42 labeled items: subset accuracy {cv['subset_accuracy']:.3f} [{low:.3f}, " in out
    assert f"Hamming accuracy {cv['hamming_accuracy']:.3f} [" in out
    assert f"micro-F1 {cv['micro_f1']:.3f} [" in out
    assert "open images" not in out

    # ... and the version's model card carries the same figures, named as the holdout's are
    from training.services.model_card import _cross_validated_rows

    version = ModelVersion.objects.get(project=project)
    card = "\n".join(_cross_validated_rows(version, version.metrics))
    assert f"| subset accuracy (out of fold, labeled items) | {cv['subset_accuracy']:.4f} | [{low:.4f}, " in card
    assert f"| micro-F1 (out of fold) | {cv['micro_f1']:.4f} |" in card
    assert "open images" not in card

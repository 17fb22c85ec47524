"""Where the bootstrap over the evaluated items cannot bound a score (one item, or no error on a few), the score has
no interval, on the model page, in the API and in the model card alike: it once borrowed the accuracy's Wilson
interval ("wilson-fallback"), which read as its own (a 1-item multi-label holdout showed "Hamming accuracy 0.833
[0.000, 0.833]" and "Macro-F1 0.667 [0.000, 0.793]", stop 55's tester). And manage.py export_model prints each
format's macro-F1 beside its accuracy, as the model card's table has it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Role
from tests.factories import model_export_stored, page_client, token_client
from training.ml.evaluate import evaluate
from training.models import ModelVersion
from training.services import exports as model_exports
from training.services.export_formats import formats_card
from training.services.model_card import model_card

pytestmark = pytest.mark.django_db

SHAPES = ["circle", "square", "triangle", "star", "cross", "ring"]
PRE = {"image_size": 64, "crop_pct": 1.0, "interpolation": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}


def one_item_multi_label() -> dict:
    """A multi-label holdout of one item labeled circle, square, triangle; the model finds circle and square: subset
    accuracy 0/1, Hamming 5/6, micro-F1 0.8, macro-F1 (over the three present) 0.667."""
    probs = np.array([[0.9, 0.8, 0.1, 0.1, 0.1, 0.1]])
    return evaluate(probs, [[0, 1, 2]], SHAPES, multi_label=True)


def five_of_five_single_label() -> dict:
    probs = np.full((5, 3), 0.1)
    truth = [0, 0, 1, 1, 2]
    probs[np.arange(5), truth] = 0.8
    return evaluate(probs, truth, ["a", "b", "c"])


def stored_version(project, classes, metrics: dict) -> ModelVersion:
    return ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="tf_efficientnet_lite0",
        class_ids=[c.pk for c in classes], metrics=metrics, label_count=20, active=True,
    )  # fmt: skip


def card_rows(version: ModelVersion, names: list[str]) -> dict[str, str]:
    card = model_card(version=version, config={"architecture": "tf_efficientnet_lite0", "preprocessing": PRE},
                      onnx_diff=1e-6, class_names=names)  # fmt: skip
    return {line.split(" | ")[0][2:]: line for line in card.splitlines() if line.startswith("| ")}


def figure_text(html: str, metric: str) -> str:
    """The text of the first headline figure of `metric` on a page (its value, interval or "no interval", n)."""
    match = re.search(rf'<span class="figure" data-metric="{metric}">(.*?)</span></span>', html, re.S)
    assert match, metric
    return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip()


@pytest.mark.parametrize(
    ("task", "metrics", "names", "borrowed"),
    [
        ("multi", one_item_multi_label, SHAPES, ["macro_f1", "hamming_accuracy", "micro_f1"]),
        ("single", five_of_five_single_label, ["a", "b", "c"], ["macro_f1"]),
    ],
)
def test_a_score_the_bootstrap_cannot_bound_has_no_interval_on_the_page_in_the_api_and_in_the_card(
    project_factory, label_class_factory, member_of, task, metrics, names, borrowed
):
    # Given a version evaluated on a holdout where every bootstrap resample scores the same
    project = project_factory(task_type=task)
    classes = [label_class_factory(project=project, name=name) for name in names]
    m = metrics()
    version = stored_version(project, classes, m)
    n = m["n"]
    engineer = member_of(project, Role.ML_ENGINEER, "mle")

    # When the ML engineer reads the model page, the API and the model card
    html = page_client(engineer).get(reverse("training:model", args=[project.slug])).content.decode()
    body = token_client(engineer).get(f"/api/projects/{project.slug}/models/1/").json()
    api = {f["metric"]: f for f in body["headline"]}
    card = card_rows(version, names)

    # Then the accuracy keeps its Wilson interval
    accuracy = "subset_accuracy" if task == "multi" else "accuracy"
    assert api[accuracy]["method"] == "wilson"
    assert re.search(rf"\[0\.\d{{3}}, [01]\.\d{{3}}\] n = {n}", figure_text(html, accuracy))
    # and each score the bootstrap cannot bound says it has none, everywhere, instead of the accuracy's interval
    for key in borrowed:
        text = figure_text(html, key)
        assert f"n = {n}, no interval" in text, text
        assert "[" not in text, text
        assert (api[key]["low"], api[key]["high"], api[key]["method"]) == (None, None, None)
        assert key not in body["metrics"]["intervals"]
        label = api[key]["label"]
        assert card[label].endswith(f"| none | {n} | - |"), card[label]
    assert "wilson-fallback" not in html + str(body)


def test_a_version_stored_with_the_borrowed_interval_shows_none_either(project_factory, label_class_factory, member_of):
    # Given a version evaluated before the change, its metrics holding the accuracy's interval for three scores
    project = project_factory(task_type="multi")
    classes = [label_class_factory(project=project, name=name) for name in SHAPES]
    m = one_item_multi_label()
    borrowed = {"low": 0.0, "high": 0.7934, "method": "wilson-fallback"}
    m["intervals"].update(macro_f1=borrowed, hamming_accuracy={**borrowed, "high": 0.8333},
                          micro_f1={**borrowed, "high": 0.8})  # fmt: skip
    version = stored_version(project, classes, m)
    engineer = member_of(project, Role.ML_ENGINEER, "mle")

    html = page_client(engineer).get(reverse("training:model", args=[project.slug])).content.decode()
    body = token_client(engineer).get(f"/api/projects/{project.slug}/models/1/").json()
    api = {f["metric"]: f for f in body["headline"]}
    card = card_rows(version, SHAPES)

    # Then the page, the API's headline and the card give those scores no interval
    assert figure_text(html, "hamming_accuracy").startswith("0.833  n = 1, no interval")
    assert "[0.000, 0.833]" not in html
    assert "[0.000, 0.793] n = 1" in html  # the subset accuracy's own Wilson interval
    assert html.count("[0.000, 0.793]") == html.count('data-metric="subset_accuracy"')
    for key in ("macro_f1", "hamming_accuracy", "micro_f1"):
        assert (api[key]["low"], api[key]["method"]) == (None, None)
        assert card[api[key]["label"]].endswith("| none | 1 | - |")


def measured(rows: list[tuple[str, str, float | None, float | None]]) -> dict:
    formats = [
        {"format": fmt, "file": file, "label": label, "accuracy": accuracy, "macro_f1": macro, "size_bytes": 1_000_000,
         "top1_agreement": 1.0, "top1_agreement_decided": 1.0, "max_prob_diff": 0.0, "ms_per_image": 1.5,
         "img_per_s": 900.0, "speedup_vs_fp32": 1.0, "tolerance": "max probability difference ≤ 0.0001",
         "within_tolerance": True}
        for (fmt, file, label), accuracy, macro in rows
    ]  # fmt: skip
    return {"population": "holdout", "population_note": "the labeled holdout", "images": 12, "labeled": True,
            "labeled_images": 5, "agreement": "label set", "int8_method": "static QOperator", "cpu_vnni": None,
            "calibration_images": 4, "formats": formats}  # fmt: skip


def test_export_model_prints_each_formats_macro_f1_as_the_model_card_has_it(
    project_factory, label_class_factory, monkeypatch, tmp_path, capsys
):
    # Given a version whose export measured accuracy and macro-F1 of each format on 5 labeled holdout images
    project = project_factory(slug="shapes-multi", task_type="multi")
    classes = [label_class_factory(project=project, name=name) for name in SHAPES]
    version = stored_version(project, classes, one_item_multi_label())
    report = measured([
        (("fp32", "model.onnx", "FP32 ONNX"), 0.4, 0.6667),
        (("int8", "model.int8.onnx", "INT8 ONNX"), 0.4, None),
    ])  # fmt: skip
    monkeypatch.setattr(
        model_exports, "model_export_build",
        lambda *, version, progress=None: {**model_export_stored(version, "shapes/m.zip"), "measured": report},
    )  # fmt: skip

    # When the ML engineer exports it from the command line
    call_command("export_model", project.slug, "--version", str(version.number), "--out", f"{tmp_path}/",
                 verbosity=0)  # fmt: skip
    out = capsys.readouterr().out

    # Then the header's "Accuracy and macro-F1 on 5 of them" is what each line shows, as the model card's table does
    assert "Accuracy and macro-F1 on 5 of them" in out
    lines = {line.split()[0] + line.split()[1]: line for line in out.splitlines() if line.startswith("  ")}
    assert "accuracy 0.400 [0.118, 0.769], n = 5  macro-F1 0.667  agreement" in lines["FP32ONNX"]
    assert "accuracy 0.400 [0.118, 0.769], n = 5  macro-F1 —  agreement" in lines["INT8ONNX"]
    card = "\n".join(formats_card(report))
    assert "| 0.400 [0.118, 0.769], n = 5 | 0.667 |" in card
    assert "| 0.400 [0.118, 0.769], n = 5 | — |" in card

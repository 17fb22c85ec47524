"""Model quality pages (training/views/quality.py): metrics from training.ml.evaluate rendered as tables and SVG
charts, confusion cells that list their items, the learning curve and the comparison of two versions."""

import numpy as np
import pytest
from django.urls import reverse
from sklearn.metrics import f1_score

from labeling.models import LabelSource, ResolvedLabel, Role, Split
from training.ml.evaluate import evaluate
from training.models import ModelVersion, Prediction

pytestmark = pytest.mark.django_db


def _metrics(y, probs, names):
    return evaluate(np.asarray(probs), list(y), names)


@pytest.fixture
def model_world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory()
    cat = label_class_factory(project=project, name="cat")
    dog = label_class_factory(project=project, name="dog")
    viewer = member_of(project, Role.ML_ENGINEER, "mle")
    y = [0, 0, 0, 1, 1, 1]
    weak = [[0.6, 0.4], [0.4, 0.6], [0.7, 0.3], [0.3, 0.7], [0.55, 0.45], [0.2, 0.8]]
    strong = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.45, 0.55], [0.2, 0.8]]
    v1 = ModelVersion.objects.create(
        project=project, number=1, artifact_path="a", architecture="lite0", class_ids=[cat.pk, dog.pk],
        metrics=_metrics(y, weak, ["cat", "dog"]), label_count=40,
    )  # fmt: skip
    v2 = ModelVersion.objects.create(
        project=project, number=2, artifact_path="b", architecture="lite0", class_ids=[cat.pk, dog.pk],
        metrics=_metrics(y, strong, ["cat", "dog"]), label_count=80, active=True,
    )  # fmt: skip
    # Holdout items with per-item predictions of v1: one cat predicted dog.
    items = []
    for true, probs in zip(y, weak, strict=True):
        item = item_factory(project=project, split=Split.HOLDOUT)
        resolved = ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT)
        resolved.classes.set([cat if true == 0 else dog])
        Prediction.objects.create(
            item=item, model_version=v1, probabilities=probs, predicted_class=cat if probs[0] > probs[1] else dog,
            confidence=max(probs), uncertainty=1 - max(probs),
        )  # fmt: skip
        items.append(item)
    return {"project": project, "viewer": viewer, "v1": v1, "v2": v2, "items": items, "y": y, "weak": weak}


def test_model_page_shows_holdout_metrics_and_charts(client, model_world):
    project = model_world["project"]
    client.force_login(model_world["viewer"])
    html = client.get(reverse("training:model_quality", args=[project.slug]) + "?v=1").content.decode()
    y, weak = model_world["y"], model_world["weak"]
    pred = np.asarray(weak).argmax(1)
    assert f"{np.mean(pred == y):.3f}" in html
    assert f"{f1_score(y, pred, average='macro'):.3f}" in html
    assert 'id="confusion"' in html
    assert 'id="reliability"' in html
    assert 'id="learning-curve"' in html
    assert html.count("<polyline") == 2  # accuracy and macro-F1 over versions
    # A cell link drills down to the items behind it.
    assert reverse("training:model_confusion_items", args=[project.slug]) + "?v=1&amp;t=0&amp;p=1" in html


def test_confusion_cell_lists_the_holdout_items_behind_it(client, model_world):
    project, items = model_world["project"], model_world["items"]
    client.force_login(model_world["viewer"])
    url = reverse("training:model_confusion_items", args=[project.slug])
    html = client.get(url + "?v=1&t=0&p=1").content.decode()
    assert "from the holdout" in html
    # True cat predicted dog by v1: only the second item (0.4 / 0.6).
    assert f'data-item="{items[1].pk}"' in html
    assert html.count('class="cell-item"') == 1
    assert client.get(url + "?v=1&t=5&p=0").status_code == 404
    assert client.get(url + "?v=9&t=0&p=0").status_code == 404


def test_compare_page_shows_per_class_deltas(client, model_world):
    project = model_world["project"]
    client.force_login(model_world["viewer"])
    html = client.get(reverse("training:model_compare", args=[project.slug]) + "?a=1&b=2").content.decode()
    m1, m2 = model_world["v1"].metrics, model_world["v2"].metrics
    delta = m2["per_class"]["cat"]["f1"] - m1["per_class"]["cat"]["f1"]
    assert f"{delta:+.3f}" in html
    assert "Δ F1" in html


def test_model_pages_survive_partial_metrics(client, model_world):
    v = model_world["v2"]
    v.metrics = {"accuracy": 0.5, "per_class": [{"name": "cat", "f1": "bad"}], "confusion_matrix": [[1]]}
    v.save()
    client.force_login(model_world["viewer"])
    response = client.get(reverse("training:model_quality", args=[model_world["project"].slug]) + "?v=2")
    assert response.status_code == 200
    assert "0.500" in response.content.decode()


def test_learning_curve_and_confusion_are_not_shown_to_annotators(client, model_world, member_of):
    annotator = member_of(model_world["project"], Role.ANNOTATOR, "ann")
    client.force_login(annotator)
    url = reverse("training:model_confusion_items", args=[model_world["project"].slug]) + "?v=1&t=0&p=1"
    assert client.get(url).status_code == 403

"""Lists of model versions never decode the per-class metrics (confusion matrix, per-class table).

At 1,080 classes a version's confusion matrix is 3.3 MB of JSON: the model page (polled while a run is in flight)
took 0.6 s with one version and about 0.1 s more per version, and the API's version list sent 4.5 MB per version.
Pages and API lists read a summary the database cuts out; the version's own page and API detail keep everything.
"""

from __future__ import annotations

import pytest
from django.db.models import JSONField
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from labeling.models import Role
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

K = 200


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The keys of every JSON object the database hands to Django with a confusion matrix in it."""
    seen: list[str] = []
    original = JSONField.from_db_value

    def spy(self, value, expression, connection):
        if isinstance(value, str) and '"confusion_matrix"' in value:
            seen.append(value[:40])
        return original(self, value, expression, connection)

    monkeypatch.setattr(JSONField, "from_db_value", spy)
    return seen


@pytest.fixture
def versions(project):
    matrix = [[(i * 7 + j) % 5 for j in range(K)] for i in range(K)]
    for number in (1, 2, 3):
        ModelVersion.objects.create(
            project=project, number=number, artifact_path="x", architecture="tf_efficientnet_lite0",
            metrics={"accuracy": 0.5 + number / 10, "macro_f1": 0.4, "ece": 0.05, "n": 150 + number,
                     "confusion_matrix": matrix, "per_class": {str(k): {"f1": 0.5} for k in range(K)},
                     "no_support": ["rare"], "intervals": {}},
            label_count=40 * number, active=number == 3,
        )  # fmt: skip
    return project


def test_the_model_page_lists_versions_with_their_figures_without_decoding_a_confusion_matrix(
    versions, member_of, decoded
):
    client = Client()
    client.force_login(member_of(versions, Role.ML_ENGINEER))
    text = client.get(reverse("training:model", args=[versions.slug])).content.decode()
    for figure in ("0.600", "0.700", "0.800", "151", "152", "153", "(no item of: <bdi>rare</bdi>)"):
        assert figure in text
    # The active version's headline (with its intervals and the classes without support) comes from its summary too
    assert "Holdout figures of v3" in text
    assert decoded == []


def test_the_quality_page_decodes_only_the_version_it_shows(versions, member_of, decoded):
    client = Client()
    client.force_login(member_of(versions, Role.ML_ENGINEER))
    text = client.get(reverse("training:model_quality", args=[versions.slug]), {"v": 2}).content.decode()
    assert "<h2>v2 <span" in text
    assert len(decoded) == 1  # v2's matrix; the version list and the learning curve read summaries


def test_the_api_lists_versions_without_per_class_parts_and_the_detail_has_them(versions, member_of, decoded):
    user = member_of(versions, Role.ML_ENGINEER)
    client = APIClient()
    client.force_authenticate(user)
    listed = client.get(f"/api/projects/{versions.slug}/models/").json()["results"]
    assert decoded == []
    assert sorted(v["metrics"]["accuracy"] for v in listed) == [0.6, 0.7, 0.8]
    assert all("confusion_matrix" not in v["metrics"] and "per_class" not in v["metrics"] for v in listed)
    assert {v["no_support"][0] for v in listed} == {"rare"}
    assert {f["metric"] for v in listed for f in v["headline"]} >= {"accuracy", "macro_f1"}

    detail = client.get(f"/api/projects/{versions.slug}/models/2/").json()
    assert len(detail["metrics"]["confusion_matrix"]) == K
    assert len(detail["metrics"]["per_class"]) == K

"""labeling reads the training app's tables through one seam, labeling/selectors/training_seam.py: no other
labeling module imports training or looks its models up by name, and without the training app the seam answers
"no model" (no suggestions, no predictions) instead of failing."""

import ast
from pathlib import Path

import pytest
from django.apps import apps

from labeling.api.items import items_filter
from labeling.selectors.reviews import model_top_classes
from labeling.selectors.training_seam import active_model_version, latest_label_error_search
from training.models import ModelVersion, Prediction

ROOT = Path(__file__).resolve().parent.parent.parent
SEAM = "labeling/selectors/training_seam.py"
# The modules of labeling/ allowed to reach into training. Only the seam belongs here; labeling/selectors/queue.py
# is listed until its own _prediction_model() reads through the seam.
ALLOWED = (SEAM,)


def _reaches_into_training(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "training" for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] == "training"
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0] if node.args else None
        return name == "get_model" and isinstance(first, ast.Constant) and str(first.value).startswith("training")
    return False


def _offenders() -> list[str]:
    found = []
    for path in sorted((ROOT / "labeling").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "migrations" in path.parts or rel in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _reaches_into_training(node):
                found.append(f"{rel}:{node.lineno}")
    return found


def test_only_the_seam_reaches_into_the_training_app():
    # given: every module of labeling/ (migrations aside)
    # when: looking for `import training...` and `apps.get_model("training", ...)`
    offenders = _offenders()

    # then: none outside the seam (read training's tables through labeling.selectors.training_seam)
    assert offenders == []


def test_the_scan_sees_a_lookup_by_name():
    # given: the seam itself, which does look training's models up by name
    tree = ast.parse((ROOT / SEAM).read_text(encoding="utf-8"))

    # then: the scan recognises it (so an empty list above means something)
    assert any(_reaches_into_training(node) for node in ast.walk(tree))
    assert _reaches_into_training(ast.parse('apps.get_model("training", "Prediction")').body[0].value)
    assert _reaches_into_training(ast.parse("from training.models import Prediction").body[0])


@pytest.fixture
def without_training_app(monkeypatch):
    """The app registry as if the training app were not installed."""
    real = apps.get_model

    def get_model(app_label, model_name=None, require_ready=True):
        if app_label.split(".")[0] == "training":
            raise LookupError("No installed app with label 'training'.")
        return real(app_label, model_name, require_ready=require_ready)

    monkeypatch.setattr(apps, "get_model", get_model)


@pytest.mark.django_db
def test_without_the_training_app_there_are_no_suggestions(without_training_app, project_factory, item_factory):
    # given: a project with items, and no training app
    project = project_factory()
    item = item_factory(project=project)

    # when / then: the reviewer sees no model view, the API finds no item with a prediction
    assert active_model_version(project) is None
    assert latest_label_error_search(project_id=project.pk) is None
    assert model_top_classes(item=item) == ([], None)
    assert list(items_filter(project=project, filters={"has_prediction": True})) == []
    assert list(items_filter(project=project, filters={"confidence_min": 0.5})) == []
    assert list(items_filter(project=project, filters={"has_prediction": False})) == [item]


@pytest.mark.django_db
def test_the_seam_reads_the_active_models_predictions(project_factory, item_factory, label_class_factory):
    # given: an active model that scored one of two items
    project = project_factory()
    cat, dog = label_class_factory(project=project), label_class_factory(project=project)
    scored, unscored = item_factory(project=project), item_factory(project=project)
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk], active=True
    )
    Prediction.objects.create(
        item=scored, model_version=version, probabilities=[0.2, 0.8], predicted_class=dog, confidence=0.8,
        uncertainty=0.2,
    )  # fmt: skip

    # when / then: the seam finds the version, the API and the review page its prediction
    assert active_model_version(project) == version
    assert list(items_filter(project=project, filters={"has_prediction": True})) == [scored]
    assert list(items_filter(project=project, filters={"has_prediction": False})) == [unscored]
    assert model_top_classes(item=scored) == ([(dog, 0.8), (cat, 0.2)], 1)


@pytest.mark.django_db
def test_a_review_verdict_never_decodes_the_models_metrics(project_factory, item_factory, member_of, monkeypatch):
    """With 1,000 classes a version's metrics (its confusion matrix) are 3 MB of JSON: decoding them on every verdict
    cost a reviewer about 200 ms per task. The review paths read the active version without them."""
    from django.db.models import JSONField
    from django.test import Client

    from labeling.models import LabelClass, Role
    from labeling.services.annotations import annotation_create

    project = project_factory(review_sample_rate=1.0)
    classes = [LabelClass.objects.create(project=project, name=f"k{n}", order=n) for n in range(3)]
    big = {"confusion_matrix": [[1] * 300 for _ in range(300)], "accuracy": 0.5}
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", class_ids=[c.pk for c in classes], metrics=big, active=True
    )
    ann = member_of(project, Role.ANNOTATOR)
    for n in range(3):
        item = item_factory(project=project)
        Prediction.objects.create(
            item=item, model_version=version, probabilities=[0.1, 0.1, 0.8], predicted_class=classes[2],
            confidence=0.8, uncertainty=0.2,
        )  # fmt: skip
        annotation_create(item=item, user=ann, class_ids=[classes[n % 2].pk])

    decoded = []
    original = JSONField.from_db_value

    def spy(self, value, expression, connection):
        if self.model is ModelVersion and self.name == "metrics":
            decoded.append(len(value or ""))
        return original(self, value, expression, connection)

    monkeypatch.setattr(JSONField, "from_db_value", spy)
    client = Client()
    client.force_login(member_of(project, Role.REVIEWER))
    page = client.get(f"/p/{project.slug}/review/")
    task = int(page.content.decode().split('data-task="', 1)[1].split('"', 1)[0])
    answer = client.post(f"/p/{project.slug}/review/{task}/verdict/", {"verdict": "accept"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert decoded == []
    assert active_model_version(project).metrics["accuracy"] == 0.5  # still there for whoever reads them

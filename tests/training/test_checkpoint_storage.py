"""Checkpoints go through Django's storage (any machine can read any version), old local paths still work,
and a new active version sets off the label-error search and the holdout predictions by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from labeling.models import Job, JobKind, Role, Split
from tests.conftest import _reset_celery_connections
from training import services
from training.models import ModelVersion, Prediction
from training.services.artifacts import artifact_local_dir, checkpoint_store, version_checkpoint_dir
from training.services.rounds import version_activated_send

from .loop_fixtures import TINY_ROUND, digits_project, label_through_queue

pytestmark = pytest.mark.django_db


def _checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architecture": "x"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


@pytest.mark.slow
def test_a_round_stores_its_checkpoint_in_storage_and_queues_the_quality_follow_ups(
    project_factory, member_of, settings, django_capture_on_commit_callbacks
):
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600  # no heartbeat thread writes inside the test transaction
    project, truth, classes = digits_project(project_factory, n=80, min_labels_to_train=10)
    label_through_queue(project, member_of(project, Role.ANNOTATOR), truth, classes, 30)
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)

    with django_capture_on_commit_callbacks(execute=True):
        summary = services.training_run_execute(run_id=run.pk)

    assert summary["status"] == "succeeded", summary
    version = ModelVersion.objects.get(project=project, active=True)
    assert version.artifact_path.startswith(f"models/{project.pk}/run-{run.pk}-")
    assert default_storage.exists(f"{version.artifact_path}/model.safetensors")
    assert default_storage.exists(f"{version.artifact_path}/config.json")
    # The follow-ups ran (eagerly here; a worker on `default` in production): the label-error search has a job
    # and the labeled holdout has per-item predictions for the confusion drill-down.
    assert Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).exists()
    holdout = Prediction.objects.filter(model_version=version, item__split=Split.HOLDOUT)
    assert holdout.count() == project.items.filter(split=Split.HOLDOUT, resolved__isnull=False).count() > 0

    # Re-scoring and the model export read the checkpoint back through the storage key.
    call_command("score", project.slug, "--in-process", verbosity=0)
    assert Prediction.objects.filter(model_version=version, item__split=Split.TRAIN).exists()

    # Each version's weights are on this machine once: in the storage. The run folder kept a second copy of every
    # version (and the pool's arrays) for as long as the install lived.
    label_through_queue(project, member_of(project, Role.ANNOTATOR), truth, classes, 10)
    second = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.training_run_execute(run_id=second.pk)["status"] == "succeeded"
    roots = (Path(settings.LABELLOOP_DATA_ROOT), Path(settings.MEDIA_ROOT))
    weights = sorted(str(p) for root in roots for p in root.rglob("*.safetensors"))
    stored = sorted(str(Path(settings.MEDIA_ROOT) / v.artifact_path / "model.safetensors")
                    for v in ModelVersion.objects.filter(project=project))  # fmt: skip
    assert len(stored) == 2
    assert weights == stored
    runs = Path(settings.LABELLOOP_DATA_ROOT) / "projects" / str(project.pk) / "runs"
    assert not list(runs.rglob("result.npz"))


@pytest.mark.slow
def test_a_round_stopped_after_its_upload_leaves_no_checkpoint_behind(
    project_factory, member_of, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from training.services import rounds

    # Given a round whose run is stopped (cancelled, or taken over) while it writes its predictions
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth, classes = digits_project(project_factory, n=60, min_labels_to_train=10)
    label_through_queue(project, member_of(project, Role.ANNOTATOR), truth, classes, 20)
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    monkeypatch.setattr(rounds, "_still_running", lambda run_id: False)

    with django_capture_on_commit_callbacks(execute=True):
        summary = services.training_run_execute(run_id=run.pk)

    # Then no version is made and the checkpoint it had uploaded is not left in the storage
    assert summary["status"] == "abandoned"
    assert not ModelVersion.objects.filter(project=project).exists()
    models = Path(settings.MEDIA_ROOT) / "models" / str(project.pk)
    assert not list(models.rglob("*"))  # nor its emptied folder


def test_version_checkpoint_dir_reads_storage_keys_and_legacy_local_paths(settings, tmp_path, project):
    settings.LABELLOOP_DATA_ROOT = tmp_path / "data"
    stored = checkpoint_store(project_id=project.pk, run_id=7, local_dir=_checkpoint(tmp_path / "ckpt"))
    assert stored.startswith(f"models/{project.pk}/run-7-")
    assert (artifact_local_dir(stored) / "model.safetensors").read_bytes() == b"weights"

    absolute = _checkpoint(tmp_path / "elsewhere" / "v1")
    legacy = _checkpoint(tmp_path / "data" / "projects" / "1" / "runs" / "3" / "checkpoint")
    assert artifact_local_dir(str(absolute)) == absolute
    assert artifact_local_dir("projects/1/runs/3/checkpoint") == legacy
    missing = artifact_local_dir("projects/nowhere")
    assert missing == tmp_path / "data" / "projects" / "nowhere"
    assert not missing.exists()
    version = ModelVersion(project=project, number=1, artifact_path=stored)
    assert version_checkpoint_dir(version=version) == artifact_local_dir(stored)


def test_the_follow_ups_of_a_new_version_never_fail_when_the_broker_is_down(settings):
    from config.celery_app import app

    old = {k: app.conf[k] for k in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:1/0")
    _reset_celery_connections(app)
    try:
        sent = version_activated_send(project_id=1, version_number=1)
    finally:
        app.conf.update(**old)
        _reset_celery_connections(app)
    assert sent is False, "the message could not be sent, and the caller (the round) got no exception"

"""Model checkpoints in a bucket (moto's S3 server): a round's upload is read back on a machine that never had it."""

import shutil

import pytest

from training.models import ModelVersion
from training.services.artifacts import checkpoint_store, version_checkpoint_dir

pytestmark = pytest.mark.django_db


def test_a_checkpoint_in_a_bucket_is_downloaded_once_into_the_worker_cache(bucket, settings, tmp_path, project):
    settings.LABELLOOP_DATA_ROOT = tmp_path / "data"
    source = tmp_path / "trained-elsewhere"
    source.mkdir()
    (source / "config.json").write_text('{"architecture": "x"}')
    (source / "model.safetensors").write_bytes(b"weights")
    key = checkpoint_store(project_id=project.pk, run_id=1, local_dir=source)
    shutil.rmtree(source)
    version = ModelVersion.objects.create(project=project, number=1, artifact_path=key, architecture="x")

    local = version_checkpoint_dir(version=version)

    assert key.startswith(f"models/{project.pk}/run-1-")
    assert local.is_relative_to(tmp_path / "data")
    assert (local / "config.json").read_text() == '{"architecture": "x"}'
    assert (local / "model.safetensors").read_bytes() == b"weights"
    (local / "model.safetensors").write_bytes(b"cached")  # a second read uses the cached copy, no download
    assert (version_checkpoint_dir(version=version) / "model.safetensors").read_bytes() == b"cached"


def test_a_new_databases_run_1_is_never_read_from_the_cached_download_of_an_old_run_1(
    bucket, settings, tmp_path, project
):
    # Given a worker that downloaded (and cached) the checkpoint of run 1 of project 1
    settings.LABELLOOP_DATA_ROOT = tmp_path / "data"
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, weights in ((first, b"old database"), (second, b"new database")):
        folder.mkdir()
        (folder / "config.json").write_text('{"architecture": "x"}')
        (folder / "model.safetensors").write_bytes(weights)
    old_key = checkpoint_store(project_id=project.pk, run_id=1, local_dir=first)
    old = ModelVersion.objects.create(project=project, number=1, artifact_path=old_key, architecture="x")
    assert (version_checkpoint_dir(version=old) / "model.safetensors").read_bytes() == b"old database"

    # When a database created afresh over the same bucket trains its own run 1 of its project 1
    new_key = checkpoint_store(project_id=project.pk, run_id=1, local_dir=second)
    old.delete()
    new = ModelVersion.objects.create(project=project, number=1, artifact_path=new_key, architecture="x")

    # Then the same worker reads the new weights, not its cached copy of the old ones
    assert (version_checkpoint_dir(version=new) / "model.safetensors").read_bytes() == b"new database"
    assert new_key != old_key

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


def test_a_worker_keeps_downloads_of_active_versions_and_recently_read_ones_only(bucket, settings, tmp_path, project):
    import os
    import time

    from labeling.storage_utils import storage_local_path

    settings.LABELLOOP_DATA_ROOT = tmp_path / "data"

    def trained(run: int, active: bool) -> ModelVersion:
        source = tmp_path / f"run{run}"
        source.mkdir()
        (source / "config.json").write_text('{"architecture": "x"}')
        (source / "model.safetensors").write_bytes(f"weights {run}".encode())
        key = checkpoint_store(project_id=project.pk, run_id=run, local_dir=source)
        return ModelVersion.objects.create(project=project, number=run, artifact_path=key, architecture="x",
                                           active=active)  # fmt: skip

    def hours_ago(path, hours: float) -> None:
        then = time.time() - hours * 3600
        os.utime(path, (then, then))

    # Given a worker that read v1 and v2 two hours ago (v2 is active), v3 ten minutes ago, and an item's image
    v1, v2, v3 = trained(1, False), trained(2, True), trained(3, False)
    folders = {v.number: version_checkpoint_dir(version=v) for v in (v1, v2, v3)}
    for number, hours in ((1, 2), (2, 2), (3, 1 / 6)):
        hours_ago(folders[number], hours)
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    default_storage.save("items/ab/abcdef.png", ContentFile(b"an image"))
    image = storage_local_path(name="items/ab/abcdef.png")
    hours_ago(image, 48)

    # When it reads v4, the new active version
    v2.active = False
    v2.save(update_fields=["active"])
    v4 = trained(4, True)
    assert (version_checkpoint_dir(version=v4) / "model.safetensors").read_bytes() == b"weights 4"

    # Then the copy of v1 (neither active nor read within the hour) and of v2 (no longer active) are gone; v3's
    # (another job may be loading it) and v4's stay, and the images it cached are untouched
    left = {p.name for p in folders[1].parent.iterdir()}
    assert left == {folders[3].name, version_checkpoint_dir(version=v4).name}
    assert image.read_bytes() == b"an image"
    # and an old version is downloaded again when a job asks for it
    assert (version_checkpoint_dir(version=v1) / "model.safetensors").read_bytes() == b"weights 1"


def test_a_checkpoint_no_version_keeps_is_deleted_from_the_bucket(bucket, settings, tmp_path, project):
    from django.core.files.storage import default_storage

    from training.services.artifacts import checkpoint_delete

    source = tmp_path / "abandoned"
    source.mkdir()
    (source / "config.json").write_text('{"architecture": "x"}')
    (source / "model.safetensors").write_bytes(b"weights")
    kept = checkpoint_store(project_id=project.pk, run_id=1, local_dir=source)
    dropped = checkpoint_store(project_id=project.pk, run_id=2, local_dir=source)

    checkpoint_delete(artifact_path=dropped)

    assert not default_storage.exists(f"{dropped}/model.safetensors")
    assert not default_storage.exists(f"{dropped}/config.json")
    assert default_storage.exists(f"{kept}/model.safetensors")

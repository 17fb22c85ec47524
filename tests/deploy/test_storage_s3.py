"""Media and model artifacts through Django's storage API on S3 (moto's S3 server on loopback):

images stored by the app land in the bucket, the permission-checked media view streams them,
and a worker reads them (and artifact folders) back by storage key.
"""

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Role
from labeling.storage_utils import storage_dir_download, storage_dir_upload, storage_local_path
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def keys(bucket) -> set[str]:
    return {o.key for o in bucket.objects.all()}


def stored_bytes(bucket, key: str) -> bytes:
    return bucket.Object(key).get()["Body"].read()


def test_stored_images_land_in_the_bucket_and_members_get_them_through_the_media_view(
    bucket, project, item_factory, member_of
):
    items = [item_factory(project=project) for _ in range(3)]
    stored = keys(bucket)
    for item in items:
        assert item.file.name in stored
        assert item.thumbnail.name in stored
    client = Client()
    client.force_login(member_of(project, Role.ANNOTATOR))

    for item in items:
        response = client.get(reverse("labeling:item_media", args=[project.slug, item.pk, "original"]))
        assert response.status_code == 200
        body = response.getvalue()
        assert body.startswith(b"\x89PNG")
        assert body == stored_bytes(bucket, item.file.name)
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"].startswith("private")
        thumb = client.get(reverse("labeling:item_media", args=[project.slug, item.pk, "thumb"]))
        assert thumb.status_code == 200
        assert thumb.getvalue() == body  # the factory stores the same bytes as thumbnail


def test_media_view_keeps_permissions_and_404s_a_missing_object_on_s3(bucket, project_factory, item_factory, member_of):
    a, b = project_factory(), project_factory()
    item_b = item_factory(project=b)
    outsider = Client()
    outsider.force_login(member_of(a, Role.MANAGER))
    assert outsider.get(reverse("labeling:item_media", args=[b.slug, item_b.pk, "original"])).status_code == 404

    insider = Client()
    insider.force_login(member_of(b, Role.ANNOTATOR))
    bucket.Object(item_b.file.name).delete()
    assert insider.get(reverse("labeling:item_media", args=[b.slug, item_b.pk, "original"])).status_code == 404


def test_a_worker_reads_an_image_by_storage_key_into_its_local_cache(bucket, item_factory, project, settings):
    item = item_factory(project=project)

    path = storage_local_path(name=item.file.name)

    assert path.is_relative_to(settings.LABELLOOP_DATA_ROOT)
    assert path.read_bytes() == stored_bytes(bucket, item.file.name)
    bucket.Object(item.file.name).delete()
    assert storage_local_path(name=item.file.name) == path  # keys are content-addressed: the copy stays valid
    with pytest.raises(FileNotFoundError):
        storage_local_path(name="projects/0/originals/no/such.png")
    with pytest.raises(ValueError, match="not a storage key"):
        storage_local_path(name="../../etc/passwd")


def test_model_artifact_folders_go_up_and_come_back_with_the_same_keys(bucket, tmp_path):
    run_dir = tmp_path / "run-7"
    (run_dir / "onnx").mkdir(parents=True)
    (run_dir / "model.safetensors").write_bytes(png_bytes(1) * 100)
    (run_dir / "config.json").write_text('{"classes": ["cat", "dog"]}')
    (run_dir / "onnx" / "model.onnx").write_bytes(b"onnx")

    written = storage_dir_upload(local_dir=run_dir, prefix="models/3/v2")
    # Uploading again (a retried task) replaces the objects instead of adding renamed copies.
    assert storage_dir_upload(local_dir=run_dir, prefix="models/3/v2") == written

    assert keys(bucket) == {"models/3/v2/config.json", "models/3/v2/model.safetensors", "models/3/v2/onnx/model.onnx"}
    local = storage_dir_download(prefix="models/3/v2")
    assert (local / "config.json").read_text() == '{"classes": ["cat", "dog"]}'
    assert (local / "model.safetensors").read_bytes() == png_bytes(1) * 100
    assert (local / "onnx" / "model.onnx").read_bytes() == b"onnx"
    with pytest.raises(FileNotFoundError):
        storage_dir_download(prefix="models/3/v99")


def test_on_local_disk_the_helpers_hand_out_the_stored_files_themselves(item_factory, project, settings, tmp_path):
    item = item_factory(project=project)
    assert storage_local_path(name=item.file.name) == settings.MEDIA_ROOT / item.file.name

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "weights.bin").write_bytes(b"w")
    storage_dir_upload(local_dir=tmp_path / "run", prefix="models/1/v1")
    assert storage_dir_download(prefix="models/1/v1") == settings.MEDIA_ROOT / "models/1/v1"
    assert (settings.MEDIA_ROOT / "models/1/v1/weights.bin").read_bytes() == b"w"


def test_with_nginx_in_front_the_media_view_only_names_the_file_for_x_accel_redirect(
    project, item_factory, member_of, settings
):
    settings.LABELLOOP_MEDIA_ACCEL_PREFIX = "/protected/"
    item = item_factory(project=project)
    client = Client()
    client.force_login(member_of(project, Role.ANNOTATOR))

    response = client.get(reverse("labeling:item_media", args=[project.slug, item.pk, "original"]))

    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected/" + item.file.name
    assert response.content == b""

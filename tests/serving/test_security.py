"""Refusals of the prediction service: every one a clear 4xx JSON error that logs nothing and leaves the service
answering. Keys are scoped to their project (another project's key gets the 404 of a project that does not exist),
revoked keys stop at once, hostile files are refused by the import's own validation, and bodies have a limit."""

from __future__ import annotations

import struct
import zlib

import pytest

from serving.models import PredictionLog
from serving.services.keys import api_key_revoke
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def png_header_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb: refused before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    data = png_bytes(7, size=(64, 64))
    return data[: len(data) // 2]


@pytest.fixture
def two_projects(served_project, project_factory, api_key):
    project, _, items, _ = served_project
    other = project_factory(slug="other", name="Other")
    return project, items, api_key(project)[1], api_key(other)[1]


def test_another_projects_key_gets_the_404_of_a_project_that_does_not_exist(two_projects, predict):
    project, items, _, other_token = two_projects
    image = items[0].file.read()
    status, answer = predict(project.slug, other_token, images=[image])
    missing_status, missing = predict("no-such-project", other_token, images=[image])
    assert (status, answer) == (404, missing) == (missing_status, missing)
    assert predict.log.records == []


@pytest.mark.parametrize(
    ("header", "error"),
    [(None, "Authorization: Bearer"), ("llp_not-a-key", "invalid API key"), ("", "Authorization: Bearer")],
)
def test_no_key_or_a_wrong_key_gets_401(two_projects, predict, header, error):
    project, items, _, _ = two_projects
    status, answer = predict(project.slug, header, images=[items[0].file.read()])
    assert status == 401
    assert error in answer["error"]
    assert predict.log.records == []


def test_a_revoked_key_stops_working_at_once(two_projects, predict, api_key):
    project, items, token, _ = two_projects
    key, token = api_key(project, name="phone app")
    image = items[0].file.read()
    assert predict(project.slug, token, images=[image])[0] == 200
    api_key_revoke(project=project, key_id=key.pk, user=None)
    status, answer = predict(project.slug, token, images=[image])
    assert status == 401
    assert "revoked" in answer["error"]
    assert len(predict.log.records) == 1  # the one before revoking


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just some text, not an image\n" * 20, "a text file, not an image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG (vector) images are not accepted"),
        (b"%PDF-1.4\n" + bytes(200), "a PDF document"),
        (b"", "empty file"),
        (png_header_bomb(), "pixel limit"),
        (truncated_png(), "truncated or corrupt image"),
    ],
    ids=["text", "svg", "pdf", "empty", "decompression-bomb", "truncated"],
)
def test_hostile_files_are_refused_with_the_imports_reason_and_nothing_is_logged(two_projects, predict, data, reason):
    # Given a batch with one good image and one hostile file
    project, items, token, _ = two_projects
    files = [("good.png", items[0].file.read()), ("bad.bin", data)]

    # When it is sent
    status, answer = predict(project.slug, token, files=files)

    # Then the whole request is refused, naming the file and the reason; nothing is predicted or logged
    assert status == 400
    assert "image 1 (bad.bin)" in answer["error"]
    assert reason in answer["error"]
    assert predict.log.records == []
    # And the service still answers the next good request
    assert predict(project.slug, token, files=files[:1])[0] == 200


def test_bodies_over_the_limit_get_413_before_they_are_read(two_projects, predict, settings):
    project, items, token, _ = two_projects
    settings.LABELLOOP_SERVING_MAX_BODY_BYTES = 10_000
    status, answer = predict(project.slug, token, files=[("big.png", png_bytes(3, size=(400, 400)) + bytes(20_000))])
    assert status == 413
    assert "over the 9.8 KiB (10,000 bytes) limit" in answer["error"]
    # A Content-Length that claims too much is refused without reading a byte
    status, _ = predict(project.slug, token, body=b"{}", content_length=10**9)
    assert status == 413
    settings.LABELLOOP_SERVING_MAX_BATCH = 2
    status, answer = predict(project.slug, token, images=[items[0].file.open("rb").read()] * 3)
    assert status == 413
    assert "2 per request" in answer["error"]
    assert predict.log.records == []
    assert PredictionLog.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"not json", "application/json", 400, "not valid JSON"),
        (b'{"images": ["%%%"]}', "application/json", 400, "not valid base64"),
        (b'{"images": []}', "application/json", 400, "no image"),
        (b"[1, 2]", "application/json", 400, '{"images"'),
        (b"abc", "text/plain", 415, "multipart/form-data"),
    ],
)
def test_malformed_requests_get_a_clear_4xx(model_project, api_key, predict, body, content_type, status, error):
    project, _, _ = model_project
    _, token = api_key(project)
    got, answer = predict(project.slug, token, body=body, content_type=content_type)
    assert got == status
    assert error in answer["error"]
    assert predict.log.records == []


def test_each_request_image_is_decoded_once(two_projects, predict, monkeypatch):
    # The checks that guard the decode (format, bytes, pixels from the header) need no decode of their own: before
    # stop 32 a PNG was decoded twice per request, once to validate it and once for the model.
    from PIL import ImageFile

    project, _, token, _ = two_projects
    loads = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self):
        if self.tile:  # a decode, not a call on an image already in memory
            loads.append(self.format)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    status, answer = predict(project.slug, token, files=[("a.png", png_bytes(5, size=(300, 200)))])
    assert status == 200, answer
    assert len(answer["predictions"]) == 1
    assert loads == ["PNG"]

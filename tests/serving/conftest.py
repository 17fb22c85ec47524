"""Serving fixtures: a project whose active model is exported to ONNX, API keys, and the prediction service
called in process (the WSGI app with a fresh registry and a log buffer the test flushes itself)."""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command

from labeling.models import Role
from serving.services.keys import api_key_create


def export_json_edit(key: str, filename: str, edit: Callable[[dict], None]) -> None:
    """Rewrite, in the export storage, the model export zip at `key`: each JSON file named `filename` (in any folder)
    passes through `edit`, which changes the dict in place (an export as older code wrote it, a measurement made
    otherwise); every other entry is copied as it is."""
    from labeling.services.exports import export_storage

    storage = export_storage()
    with storage.open(key, "rb") as fh:
        original = fh.read()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.rsplit("/", 1)[-1] == filename:
                document = json.loads(data)
                edit(document)
                data = json.dumps(document, indent=2, sort_keys=True).encode()
            dst.writestr(info, data)
    storage.delete(key)
    storage.save(key, io.BytesIO(out.getvalue()))


def export_version(project, number: int, tmp_path: Path) -> None:
    """Export a version through the product's path (manage.py export_model): its ONNX is what the service loads."""
    call_command("export_model", project.slug, "--version", str(number), "--out", str(tmp_path), verbosity=0)


@pytest.fixture
def model_project(project_factory, label_class_factory, item_factory):
    """A project with three classes and six items; versions come from tests/exports/models.make_model_version."""
    project = project_factory(slug="served", name="Served")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["cat", "dog", "bird"])]
    items = [item_factory(project=project) for _ in range(6)]
    return project, classes, items


@pytest.fixture
def served_project(model_project, tmp_path):
    """model_project with an active v1 exported to ONNX."""
    from tests.exports.models import make_model_version

    project, classes, items = model_project
    version = make_model_version(project=project, classes=classes, items=items, number=1, active=True)
    export_version(project, 1, tmp_path / "exports")
    return project, classes, items, version


@pytest.fixture
def api_key(member_of) -> Callable:
    """api_key(project) -> (key, token), made by the project's ML engineer."""

    def make(project, name: str = "tests"):
        return api_key_create(project=project, user=member_of(project, Role.ML_ENGINEER), name=name)

    return make


class Collected:
    """Stands in for the service's log buffer: keeps records until the test writes them."""

    def __init__(self):
        self.records = []

    def add(self, records) -> None:
        self.records.extend(records)

    def flush(self) -> int:
        from serving.services.prediction_log import prediction_logs_write

        records, self.records = self.records, []
        return prediction_logs_write(records=records)


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, data in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'.encode())
        out.write(b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def predict(monkeypatch) -> Callable:
    """predict(slug, token, files=[(name, bytes)] | images=[bytes] (JSON base64) | body=bytes, ...) ->
    (status, payload) through serving.wsgi_predict.application, in this process."""
    from serving import wsgi_predict
    from serving.runtime.registry import ModelRegistry

    collected = Collected()
    monkeypatch.setattr(wsgi_predict, "registry", ModelRegistry(reload_seconds=0))
    monkeypatch.setattr(wsgi_predict, "log_buffer", collected)
    # The service ends each request's connection as Django does; here that would end the test's transaction.
    monkeypatch.setattr(wsgi_predict, "close_old_connections", lambda: None)

    def call(slug, token=None, *, files=None, images=None, body=None, content_type="application/json",
             method="POST", content_length=None, query=""):  # fmt: skip
        if files is not None:
            body, content_type = multipart(files)
        elif images is not None:
            body = json.dumps({"images": [base64.b64encode(i).decode() for i in images]}).encode()
        body = body or b""
        length = len(body) if content_length is None else content_length
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": f"/v1/projects/{slug}/predict", "QUERY_STRING": query,
            "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(length),
            "wsgi.input": io.BytesIO(body), "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
        }  # fmt: skip
        if token is not None:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        answer = {}

        def start_response(status, headers):
            answer["status"] = int(status.split()[0])
            answer["headers"] = dict(headers)

        payload = json.loads(b"".join(wsgi_predict.application(environ, start_response)))
        return answer["status"], payload

    call.log = collected
    return call

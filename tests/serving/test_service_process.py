"""The prediction service as `make demo` and compose run it: `manage.py serve_predictions` in its own process
(gunicorn), answering over HTTP; a version made active is served within one reload interval, and the prediction
log holds what was served."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import transaction

from serving.models import PredictionLog
from tests.conftest import free_port, wait_for
from tests.serving.conftest import export_version
from training.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
RELOAD_SECONDS = 1.0


def post(url: str, token: str, images: list[bytes]) -> tuple[int, dict]:
    body = json.dumps({"images": [base64.b64encode(i).decode() for i in images]}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def service(celery_env, tmp_path):
    """start(): `manage.py serve_predictions` on a free port with a 1 s reload interval -> its base URL."""
    procs = []

    def start() -> str:
        port = free_port()
        env = {**celery_env, "LABELLOOP_SERVING_RELOAD_SECONDS": str(RELOAD_SECONDS),
               "LABELLOOP_SERVING_LOG_FLUSH_SECONDS": "0.2", "LABELLOOP_SERVING_ORT_THREADS": "1"}  # fmt: skip
        log = (tmp_path / "predict.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve_predictions", "--port", str(port), "--workers", "2"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "predict.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(up, 60, what="the prediction service")
        return url

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)


def test_service_process_serves_logs_and_picks_up_a_new_version_within_one_reload_interval(
    served_project, api_key, service, tmp_path
):
    from tests.exports.models import make_model_version

    # Given v1 active and exported, v2 trained and exported but not active, and a key
    project, classes, items, v1 = served_project
    v2 = make_model_version(project=project, classes=classes, items=items, number=2, active=False)
    export_version(project, 2, tmp_path / "exports")
    _, token = api_key(project)
    url = service() + f"/v1/projects/{project.slug}/predict"
    images = [item.file.open("rb").read() for item in items]

    # When a client asks for predictions over HTTP
    status, first = post(url, token, images[:3])
    assert status == 200, first
    assert {p["version"] for p in first["predictions"]} == {1}
    expected_v1 = {p.item_id: p.probabilities for p in v1.predictions.all()}
    for item, answer in zip(items[:3], first["predictions"], strict=True):
        assert max(abs(a - b) for a, b in zip(answer["probabilities"], expected_v1[item.pk], strict=True)) < 1e-4

    # And a hostile file comes in between: refused, and the service goes on
    status, refused = post(url, token, [b"<html><body>hi</body></html>"])
    assert status == 400
    assert "an HTML page" in refused["error"]

    # When v2 becomes the active version (as a training round makes it: one transaction)
    with transaction.atomic():
        ModelVersion.objects.filter(pk=v1.pk).update(active=False)
        ModelVersion.objects.filter(pk=v2.pk).update(active=True)
    switched = time.monotonic()
    served = []
    while time.monotonic() - switched < RELOAD_SECONDS + 5:
        status, answer = post(url, token, images[3:4])
        assert status == 200, answer
        served.append(answer)
        if answer["version"] == 2:
            break
        time.sleep(0.1)
    took = time.monotonic() - switched

    # Then v2 answers within the reload interval (plus the time to load it), with v2's own probabilities
    assert served[-1]["version"] == 2, served[-1]
    assert took < RELOAD_SECONDS + 3.0, f"v2 served after {took:.1f}s"
    expected_v2 = {p.item_id: p.probabilities for p in v2.predictions.all()}
    got = served[-1]["predictions"][0]["probabilities"]
    assert max(abs(a - b) for a, b in zip(got, expected_v2[items[3].pk], strict=True)) < 1e-4

    # And the prediction log holds exactly what was served (the refused request is not there)
    answers = first["predictions"] + [a["predictions"][0] for a in served]
    wait_for(lambda: PredictionLog.objects.filter(project=project).count() >= len(answers), 10, what="the log")
    logged = {row.uid.hex: row for row in PredictionLog.objects.filter(project=project)}
    assert len(logged) == len(answers)
    for answer in answers:
        row = logged[answer["id"].replace("-", "")]
        assert row.version_number == answer["version"]
        assert row.top_class == answer["top_k"][0]["class"]
        assert row.confidence == pytest.approx(answer["top_k"][0]["probability"], abs=1e-5)
        assert row.image

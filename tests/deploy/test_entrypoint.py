"""The container entry point outside Docker: migrate, web (gunicorn) and a worker under production
settings, wired the way docker/compose.yml wires them, answer /livez and /healthz over real HTTP."""

import json
import os
import secrets
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # Needs no database of the suite's: run it once, in the SQLite pass of `make test`, not again on PostgreSQL.
]


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError:
        return 0, {}, b""


@pytest.fixture
def stack(tmp_path, redis_server):
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LABELLOOP_", "CELERY_"))},
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "REDIS_URL": redis_server.url,
        "DJANGO_ALLOWED_HOSTS": "labelloop.example.com",
        # As docker/compose.yml's nginx profile runs it: X-Forwarded-Proto from the proxy is believed.
        "LABELLOOP_BEHIND_PROXY": "true",
        "LABELLOOP_MEDIA_ROOT": str(tmp_path / "media"),
        "LABELLOOP_DATA_ROOT": str(tmp_path / "data"),
        "LOG_FORMAT": "json",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "2",
    }
    procs: list[subprocess.Popen] = []

    def start(role: str, log: str, **extra) -> subprocess.Popen:
        proc = subprocess.Popen(
            [str(ENTRYPOINT), role], cwd=ROOT, env={**env, **extra}, stdout=(tmp_path / log).open("w"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
        return proc

    migrate = subprocess.run([str(ENTRYPOINT), "migrate"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    yield start, f"http://127.0.0.1:{port}", tmp_path
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_web_and_worker_from_the_entrypoint_come_up_healthy_under_production_settings(stack):
    start, base, logs = stack
    start("web", "web.log")
    wait_for(lambda: get(base + "/livez")[0] == 200, 60, what="gunicorn /livez")

    status, _, body = get(base + "/healthz")
    assert status == 503  # no worker yet
    assert json.loads(body)["checks"]["workers"].startswith("error")
    # Pages redirect to https; health checks over plain http from inside the host do not.
    status, headers, _ = get(base + "/accounts/login/")
    assert status == 301
    assert headers["Location"].startswith("https://")
    assert get(base + "/accounts/login/", {"X-Forwarded-Proto": "https"})[0] == 200
    assert get(base + "/accounts/login/", {"X-Forwarded-Proto": "https", "Host": "evil.example"})[0] == 400

    start("worker", "worker.log", CELERY_QUEUES="housekeeping,default,gpu", CELERY_CONCURRENCY="1")
    wait_for(lambda: get(base + "/healthz")[0] == 200, 60, what="/healthz with a worker")
    (worker,) = json.loads(get(base + "/healthz")[2])["workers"]
    assert worker["hostname"].startswith("housekeeping-default-gpu@")
    assert worker["queues"] == ["default", "gpu", "housekeeping"]
    # LOG_FORMAT=json: every line gunicorn and Django wrote is one JSON object.
    web_log = [json.loads(line) for line in (logs / "web.log").read_text().splitlines() if line.strip()]
    assert any(e["logger"] == "gunicorn.access" and "GET /livez" in e["message"] for e in web_log)
    assert any(e["logger"] == "django.request" and e["status_code"] == 503 for e in web_log)

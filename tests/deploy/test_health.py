"""/healthz reports database, Redis and live workers per queue (200/503); /livez stays up without Redis."""

import json
import os

import pytest

from labeling import heartbeat
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_up(redis_server, settings):
    settings.REDIS_URL = redis_server.url
    client = heartbeat.redis_client()
    client.delete(heartbeat.WORKERS_SET, *client.keys(heartbeat.KEY_PREFIX + "*"))
    yield client
    client.delete(heartbeat.WORKERS_SET, *client.keys(heartbeat.KEY_PREFIX + "*"))


def test_healthz_is_200_with_database_redis_and_a_worker_on_every_queue(redis_up, client):
    heartbeat.heartbeat_write(hostname="housekeeping@host1", queues=["housekeeping"], concurrency=1)
    heartbeat.heartbeat_write(hostname="cpu@host1", queues=["default"], concurrency=2)
    heartbeat.heartbeat_write(hostname="gpu@host2", queues=["gpu"], concurrency=1)

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok", "workers": "ok"}
    assert body["queues"] == {"housekeeping": 1, "default": 1, "gpu": 1}
    assert [w["hostname"] for w in body["workers"]] == ["cpu@host1", "gpu@host2", "housekeeping@host1"]


def test_healthz_is_503_when_redis_is_down_but_livez_keeps_the_web_in_rotation(settings, client):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")
    assert "127.0.0.1" not in json.dumps(body)  # details go to the log, not to anonymous callers
    live = client.get("/livez")
    assert live.status_code == 200
    assert live.json()["checks"] == {"database": "ok"}


def test_healthz_is_503_when_no_worker_consumes_the_gpu_queue(redis_up, client):
    heartbeat.heartbeat_write(hostname="housekeeping@host1", queues=["housekeeping"])
    heartbeat.heartbeat_write(hostname="cpu@host1", queues=["default"])

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["workers"] == "error: no worker consumes queue gpu"
    assert response.json()["queues"] == {"housekeeping": 1, "default": 1, "gpu": 0}


def test_healthz_is_503_when_nothing_consumes_housekeeping_so_the_scheduler_would_never_tick(redis_up, client):
    heartbeat.heartbeat_write(hostname="all@host1", queues=["default", "gpu"])

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["workers"] == "error: no worker consumes queue housekeeping"


def test_healthz_is_503_without_any_worker_and_forgets_workers_whose_heartbeat_expired(redis_up, client):
    heartbeat.heartbeat_write(hostname="gone@host3", queues=["housekeeping", "default", "gpu"])
    redis_up.delete(heartbeat.KEY_PREFIX + "gone@host3")  # what the TTL does when a worker dies

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["workers"] == []
    assert "no worker heartbeat" in response.json()["checks"]["workers"]
    assert redis_up.smembers(heartbeat.WORKERS_SET) == set()


def test_health_endpoints_need_no_login_and_are_never_cached(redis_up, client):
    heartbeat.heartbeat_write(hostname="all@host", queues=["housekeeping", "default", "gpu"])
    for url in ("/healthz", "/livez"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-cache" in response["Cache-Control"], url


@pytest.mark.integration
def test_a_real_worker_beats_into_healthz_logs_json_and_leaves_on_shutdown(redis_up, start_worker, client):
    worker = start_worker(queues="housekeeping,default,gpu", name="beater", extra_env={"LOG_FORMAT": "json"})

    wait_for(lambda: client.get("/healthz").status_code == 200, 20, what="the worker's heartbeat")
    (seen,) = client.get("/healthz").json()["workers"]
    assert seen["hostname"].startswith("beater@")
    assert seen["queues"] == ["default", "gpu", "housekeeping"]
    assert seen["concurrency"] == 1
    entries = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    assert any(e["level"] == "INFO" and e["message"].endswith("ready.") for e in entries), worker.output()[-2000:]

    worker.kill(15)  # a graceful stop removes its heartbeat at once instead of waiting for the TTL
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["workers"] == []


@pytest.mark.parametrize(("index", "gpu"), [(0, "5"), (1, "7"), (2, "5")])
def test_each_worker_pool_process_is_pinned_to_its_own_gpu(monkeypatch, index, gpu):
    import billiard.process

    from config import worker

    monkeypatch.setenv("LABELLOOP_WORKER_GPUS", "5,7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "all-of-them")
    monkeypatch.setattr(billiard.process, "current_process", lambda: type("P", (), {"index": index})())

    worker._pin_gpu()

    assert os.environ["CUDA_VISIBLE_DEVICES"] == gpu


def test_without_a_gpu_list_workers_leave_cuda_visible_devices_alone(monkeypatch):
    from config import worker

    monkeypatch.delenv("LABELLOOP_WORKER_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    worker._pin_gpu()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"

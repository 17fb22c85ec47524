"""Shared fixtures: factories, users with roles, and the real Redis / Celery worker processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_factoryboy import register

from labeling.models import Role
from tests import factories

register(factories.UserFactory)
register(factories.ProjectFactory)
register(factories.MembershipFactory)
register(factories.LabelClassFactory)
register(factories.ItemFactory)

pytest_plugins = ["tests.browser_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"

# A test that asks for none of these (and has no django_db mark) cannot reach the test database, so it runs the same
# on PostgreSQL and on SQLite: `make test` runs it in the PostgreSQL pass only (--database-tests-only in the other).
DATABASE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server"}
)


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the test database (the second database pass of `make test`)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--database-tests-only"):
        return
    kept, dropped = [], []
    for item in items:
        uses_database = item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames)
        (kept if uses_database else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """scripts/slow_lanes.sh runs two pytest processes at once; against one $DATABASE_URL, the browser lane's test
    databases get the suffix LABELLOOP_TEST_DB_SUFFIX so the two do not create and drop each other's."""
    from django.conf import settings

    suffix = os.environ.get("LABELLOOP_TEST_DB_SUFFIX")
    if not suffix:
        return
    for db in settings.DATABASES.values():
        test = db.setdefault("TEST", {})
        if db["ENGINE"] != "django.db.backends.sqlite3":  # SQLite's test file is a fresh temporary one per process
            test["NAME"] = f"{test.get('NAME') or 'test_' + db['NAME']}_{suffix}"


@pytest.fixture(autouse=True, scope="session")
def _eager_results_read_from_any_thread():
    """Celery's "inside a task" flag is process-wide: while an eager task runs in the live server's thread (a
    browser test's request), a test reading an eager result in its own thread was refused ("Never call
    result.get() within a task!"), at random. An eager result is computed before it is returned, so reading
    it can never wait on a subtask: every test reads them without that check (the fix used to be each call
    site's own disable_sync_subtasks=False)."""
    from celery.result import EagerResult

    original = EagerResult.get

    def get(self, *args, disable_sync_subtasks=False, **kwargs):
        return original(self, *args, disable_sync_subtasks=disable_sync_subtasks, **kwargs)

    EagerResult.get = get
    yield
    EagerResult.get = original


@pytest.fixture(autouse=True)
def _isolated_storage(request, tmp_path_factory):
    """Each test gets its own media and data folders: ids are reused after rollbacks, files must not be."""
    if "settings" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        yield
        return
    settings = request.getfixturevalue("settings")
    base = tmp_path_factory.mktemp("storage")
    settings.MEDIA_ROOT = base / "media"
    settings.LABELLOOP_DATA_ROOT = base / "data"
    yield


@pytest.fixture
def member_of(db) -> Callable:
    """member_of(project, role="annotator", username=None) -> user with that membership."""

    def make(project, role: str = Role.ANNOTATOR, username: str | None = None):
        user = factories.UserFactory(**({"username": username} if username else {}))
        factories.MembershipFactory(user=user, project=project, role=role)
        return user

    return make


@pytest.fixture
def allow_project_creation(db) -> Callable:
    """allow_project_creation(user) -> user, now in the "project creators" group (not staff)."""
    from django.contrib.auth.models import Group

    from labeling.permissions import PROJECT_CREATORS

    def allow(user):
        Group.objects.get_or_create(name=PROJECT_CREATORS)[0].user_set.add(user)
        return user

    return allow


@pytest.fixture
def grant_server_folders(db) -> Callable:
    """grant_server_folders(project, *folders): staff grant the folders (inside LABELLOOP_IMPORT_ROOTS, which the
    test sets) to the project, as in the admin."""

    def grant(project, *folders):
        project.granted_import_roots = [str(Path(folder).resolve()) for folder in folders]
        project.save(update_fields=["granted_import_roots"])
        return project

    return grant


@pytest.fixture
def cifar_dir() -> Path:
    if not CIFAR.is_dir():
        pytest.skip(f"CIFAR-10 JPEGs not found at {CIFAR} (see ../shared/datasets/README.md)")
    return CIFAR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class RedisServer:
    """A real redis-server on a free loopback port; stop() and start() simulate an outage."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (.ci/run installs it)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.ping, 10, what="redis-server")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def database_url_for_workers() -> str:
    """The URL of the *test* database, for worker processes started by a test."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class CeleryWorker:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc = proc
        self.log = log

    def kill(self, sig: int = 9) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(20)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _reset_celery_connections(app) -> None:
    """Drop cached pools and result backend so the app talks to the broker now configured.

    (force_close_all() leaves the pool closed for good, and an eager task run earlier caches a backend
    pointing at the default Redis.)
    """
    from kombu import pools

    app._pool = None
    app.amqp._producer_pool = None
    app._local.__dict__.pop("backend", None)
    # kombu's global pool groups may hold pools closed by an earlier test: forget them (closing
    # them again here would close pools that a cached producer pool still hands out).
    for group in pools._groups:
        group.clear()


@pytest.fixture
def celery_env(redis_server, settings, transactional_db) -> Iterator[dict]:
    """Point this test process's Celery app at the real Redis (not eager) and return worker env vars."""
    from config.celery_app import app

    old = {k: app.conf[k] for k in ("task_always_eager", "broker_url", "result_backend")}
    _reset_celery_connections(app)
    app.conf.update(task_always_eager=False, broker_url=redis_server.url, result_backend=redis_server.url)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": database_url_for_workers(),
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "LABELLOOP_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LABELLOOP_DATA_ROOT": str(settings.LABELLOOP_DATA_ROOT),
        "PYTHONPATH": str(ROOT),
    }
    # Purge leftovers from an earlier test so a worker never picks up a stale task.
    app.control.purge()
    yield env
    with contextlib.suppress(Exception):
        app.control.purge()
    app.conf.update(**old)
    if app._pool is not None:
        app._pool.force_close_all()
    _reset_celery_connections(app)


@pytest.fixture
def start_worker(celery_env, tmp_path) -> Iterator[Callable[..., CeleryWorker]]:
    """start_worker(queues="housekeeping,default,gpu", concurrency=1, name="w1", beat=False) -> a worker process."""
    started: list[CeleryWorker] = []

    def start(queues: str = "housekeeping,default,gpu", concurrency: int = 1, name: str = "w1", beat: bool = False,
              extra_env: dict | None = None) -> CeleryWorker:  # fmt: skip
        log = tmp_path / f"worker-{name}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", queues,
               "-c", str(concurrency), "-n", f"{name}@%h", "--pool", "prefork", "-l", "INFO",
               "--without-gossip", "--without-mingle"]  # fmt: skip
        if beat:
            cmd += ["-B", "-s", str(tmp_path / f"beat-{name}")]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**celery_env, **(extra_env or {})}, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        worker = CeleryWorker(proc, log)
        started.append(worker)
        wait_for(lambda: "ready." in worker.output() or proc.poll() is not None, 60, what=f"worker {name}")
        if proc.poll() is not None:
            raise AssertionError(f"worker {name} exited:\n{worker.output()[-3000:]}")
        return worker

    yield start
    for worker in started:
        with contextlib.suppress(Exception):
            worker.kill(15)
        with contextlib.suppress(Exception):
            worker.kill(9)


@pytest.fixture
def busy_project(project_factory, label_class_factory, item_factory, member_of):
    """A project with labels, two model versions and a running export: every page has its interactive parts."""
    import numpy as np

    from labeling.models import JobKind
    from labeling.services.annotations import annotation_create
    from labeling.services.jobs import job_create
    from training.ml.evaluate import evaluate
    from training.models import ModelVersion

    project = project_factory(name="Street signs", review_sample_rate=1.0)
    stop = label_class_factory(project=project, name="stop", hotkey="1", color="#c0392b")
    yld = label_class_factory(project=project, name="yield", hotkey="2", color="#2980b9")
    manager = member_of(project, Role.MANAGER, "maria")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    items = [item_factory(project=project) for _ in range(8)]
    for item in items[:4]:
        annotation_create(item=item, user=annotator, class_ids=[stop.pk])
    y, probs = [0, 0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]]
    for number in (1, 2):
        ModelVersion.objects.create(
            project=project, number=number, artifact_path=f"v{number}", architecture="lite0",
            class_ids=[stop.pk, yld.pk], metrics=evaluate(np.asarray(probs), y, ["stop", "yield"]),
            label_count=4 * number, active=number == 2,
        )  # fmt: skip
    job_create(project=project, kind=JobKind.EXPORT_DATASET, created_by=manager, params={"format": "csv"})
    return project, manager

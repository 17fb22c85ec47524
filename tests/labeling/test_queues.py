"""Three queues (housekeeping, default, gpu), each with its own worker as `make demo` starts them, and job pages
that say what a queued job waits behind.

The real-worker test starts the workers from Procfile.dev's own lines (their -Q, -n and -c), keeps the gpu
worker busy with a training run that sleeps at every progress step, and shows that an upload is imported and
the scheduler keeps ticking meanwhile.
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import shlex
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.selectors.jobs import JOB_KIND_QUEUES, QUEUES, TRAINING_RUN_QUEUE, job_queue
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def procfile_workers() -> dict[str, dict]:
    """Procfile.dev's Celery worker processes: name -> {"queues": "a,b", "concurrency": int, "node": "..."}."""
    workers = {}
    for line in (ROOT / "Procfile.dev").read_text().splitlines():
        match = re.match(r"^([\w-]+):\s*(.+)$", line)
        if not match:
            continue
        name, args = match.group(1), shlex.split(match.group(2))
        if "celery" not in args[0] or "worker" not in args:
            continue
        options = dict(itertools.pairwise(args))
        workers[name] = {
            "queues": options.get("-Q", options.get("--queues", "celery")),
            "concurrency": int(options.get("-c", options.get("--concurrency", "1"))),
            "node": options.get("-n", options.get("--hostname", "")),
        }
    return workers


def shared_tasks_in_source() -> set[str]:
    """module.function of every @shared_task in labeling/ and training/ (also ones CELERY_IMPORTS would miss)."""
    names = set()
    for app in ("labeling", "training", "serving"):
        for path in sorted((ROOT / app).rglob("*.py")):
            tree = ast.parse(path.read_text())
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    for deco in node.decorator_list:
                        target = deco.func if isinstance(deco, ast.Call) else deco
                        if getattr(target, "id", getattr(target, "attr", None)) == "shared_task":
                            names.add(f"{module}.{node.name}")
    return names


def route_of(app, name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


# ---- routing: every task, every beat entry, every kind of job --------------------------------------------------


def test_every_task_is_routed_by_name_to_housekeeping_default_or_gpu():
    from config.celery_app import app

    app.loader.import_default_modules()  # what a worker loads: every app's tasks.py (autodiscover) + CELERY_IMPORTS
    registered = {name for name in app.tasks if not name.startswith("celery.")}
    in_source = shared_tasks_in_source()
    assert len(in_source) >= 13
    assert in_source <= registered, f"not in an app's tasks.py: {in_source - registered}"
    routes = django_settings.CELERY_TASK_ROUTES

    unrouted = sorted(registered - set(routes))
    assert not unrouted, f"route these in CELERY_TASK_ROUTES (config/settings/base.py): {unrouted}"
    assert {q.name for q in django_settings.CELERY_TASK_QUEUES} == set(QUEUES)
    for name in sorted(registered):
        assert routes[name]["queue"] in QUEUES, name
        assert route_of(app, name) == routes[name]["queue"], name  # what a send really uses

    # The short periodic work never shares a queue with long work; training and scoring share the GPU.
    assert route_of(app, "training.tasks.training_scheduler_tick_task") == "housekeeping"
    assert sorted(n for n in registered if routes[n]["queue"] == "housekeeping") == [
        "labeling.tasks.export_files_expire_task",
        "labeling.tasks.staging_dirs_sweep_task",
        "serving.tasks.prediction_log_prune_task",
        "serving.tasks.predictions_auto_queue_task",
        "training.tasks.training_scheduler_tick_task",
    ]
    for name in ("training_run_execute_task", "training_score_task"):
        assert route_of(app, f"training.tasks.{name}") == "gpu"
    for name in ("score_shard_task", "score_finalize_task"):
        assert route_of(app, f"training.tasks.{name}") == "gpu"
    assert route_of(app, "labeling.tasks.import_run_task") == "default"
    assert route_of(app, "training.tasks.label_errors_find_task") == "default"
    for name in ("serving.tasks.drift_check_task", "serving.tasks.alert_webhook_send_task"):  # CPU work, not a tick
        assert route_of(app, name) == "default", name


def test_beat_sends_each_entry_to_its_tasks_queue():
    routes = django_settings.CELERY_TASK_ROUTES
    assert django_settings.CELERY_BEAT_SCHEDULE
    for key, entry in django_settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"]["queue"] == routes[entry["task"]]["queue"], key


@pytest.mark.parametrize(
    ("kind", "task"),
    [
        (JobKind.IMPORT, "labeling.tasks.import_run_task"),
        (JobKind.EXPORT_DATASET, "labeling.tasks.dataset_export_task"),
        (JobKind.EXPORT_MODEL, "training.tasks.model_export_task"),
        (JobKind.INFERENCE, "training.tasks.inference_task"),
        (JobKind.LABEL_ERRORS, "training.tasks.label_errors_find_task"),
        (JobKind.SCORE, "training.tasks.training_score_task"),
        (JobKind.TRAIN, "training.tasks.training_run_execute_task"),
    ],
)
def test_a_jobs_page_looks_on_the_queue_its_task_is_routed_to(kind, task):
    assert job_queue(kind) == django_settings.CELERY_TASK_ROUTES[task]["queue"]


def test_every_kind_of_job_and_training_runs_have_a_queue():
    assert set(JOB_KIND_QUEUES) == set(JobKind.values)
    route = django_settings.CELERY_TASK_ROUTES["training.tasks.training_run_execute_task"]
    assert route["queue"] == TRAINING_RUN_QUEUE


def test_make_demo_runs_one_worker_per_queue_with_distinct_node_names():
    workers = procfile_workers()
    consumed = [q for w in workers.values() for q in w["queues"].split(",")]
    assert sorted(consumed) == sorted(QUEUES), workers  # every queue, each by exactly one worker
    assert len(workers) == 3
    housekeeping = next(w for w in workers.values() if "housekeeping" in w["queues"].split(","))
    assert housekeeping["queues"] == "housekeeping"  # alone: nothing long can sit in front of a tick
    nodes = [w["node"].split("@")[0] for w in workers.values()]
    assert all(nodes), workers
    assert len(set(nodes)) == len(nodes), nodes  # two workers of one name on one host collide


# ---- "Queued behind ..." on job pages --------------------------------------------------------------------------


@pytest.fixture
def busy_projects(project_factory):
    """Project A (ours) and project B (someone else's, with a telling name), each with work in flight."""
    from training.models import RunStatus, TrainingRun

    ours = project_factory(name="Our birds")
    theirs = project_factory(name="Secret merger targets", slug="secret-merger")
    their_run = TrainingRun.objects.create(project=theirs, status=RunStatus.RUNNING, progress=0.7, stage="train")
    return ours, theirs, their_run


def job_fragment(client: Client, job: Job) -> str:
    response = client.get(reverse("labeling:job_status", args=[job.project.slug, job.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_queued_scoring_job_says_it_waits_behind_the_training_run_and_counts_other_projects(busy_projects, member_of):
    from training.models import RunStatus, TrainingRun

    ours, theirs, _ = busy_projects
    our_run = TrainingRun.objects.create(project=ours, status=RunStatus.RUNNING, progress=0.4, stage="train")
    Job.objects.create(project=ours, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING)  # default queue
    score = Job.objects.create(project=ours, kind=JobKind.SCORE)
    client = Client()
    client.force_login(member_of(ours, Role.ML_ENGINEER))

    page = job_fragment(client, score)

    assert f"Queued behind: training run #{our_run.pk} (running, 40 %), 1 job of other projects" in page
    assert "label-error" not in page  # it runs on the default queue, not in front of scoring
    assert theirs.name not in page
    assert theirs.slug not in page


@pytest.mark.django_db
def test_an_import_page_says_what_the_queued_import_waits_behind_and_stops_once_it_runs(busy_projects, member_of):
    ours, theirs, _ = busy_projects
    search = Job.objects.create(project=ours, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING, done=3, total=25)
    Job.objects.create(project=theirs, kind=JobKind.IMPORT, status=JobStatus.QUEUED)  # theirs, queued earlier
    upload = Job.objects.create(project=ours, kind=JobKind.IMPORT)
    later = Job.objects.create(project=ours, kind=JobKind.EXPORT_DATASET)  # queued after it: not ahead
    client = Client()
    client.force_login(member_of(ours, Role.MANAGER))

    page = client.get(reverse("labeling:import", args=[ours.slug])).content.decode()

    assert f"Queued behind: label-error search #{search.number} (running, 12 %), 1 job of other projects" in page
    assert f"export #{later.number}" not in page
    assert "training run" not in page  # the gpu queue's work does not hold up an import
    assert theirs.name not in page

    upload.status = JobStatus.RUNNING
    upload.save()
    assert "Queued behind" not in job_fragment(client, upload)


@pytest.mark.django_db
def test_a_queued_job_with_nothing_ahead_says_it_waits_for_a_worker(project, member_of):
    job = Job.objects.create(project=project, kind=JobKind.EXPORT_DATASET)
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))

    page = job_fragment(client, job)

    assert "Nothing ahead on the default queue: waiting for a worker to pick it up." in page


@pytest.mark.django_db
def test_the_model_page_says_what_a_queued_training_run_waits_behind(busy_projects, member_of):
    from training.models import TrainingRun

    ours, theirs, _ = busy_projects
    scoring = Job.objects.create(project=ours, kind=JobKind.SCORE, status=JobStatus.RUNNING, done=500, total=1000)
    run = TrainingRun.objects.create(project=ours)  # queued
    client = Client()
    client.force_login(member_of(ours, Role.ML_ENGINEER))

    page = client.get(reverse("training:model", args=[ours.slug])).content.decode()
    live = client.get(reverse("training:model_live", args=[ours.slug])).content.decode()

    expected = f"Queued behind: scoring #{scoring.number} (running, 50 %), 1 job of other projects"
    assert expected in page
    assert expected in live  # the 2-second poll keeps saying it
    assert f'id="run-{run.pk}"' in page
    assert theirs.name not in page


# ---- the workers as `make demo` starts them --------------------------------------------------------------------


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (seed * 40 % 256, 90, seed * 70 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.integration
@pytest.mark.slow
def test_while_the_gpu_worker_trains_an_upload_is_imported_and_the_scheduler_keeps_ticking(
    start_worker, project_factory, item_factory, member_of, settings
):
    from training import services
    from training.models import RunStatus, TrainingRun

    # Given the workers of `make demo`, the beat inside the housekeeping one (ticking every second), and a
    # training run that holds the gpu worker (it sleeps 10 minutes at its first progress step).
    tick_queue = settings.CELERY_TASK_ROUTES["training.tasks.training_scheduler_tick_task"]["queue"]
    envs = {tick_queue: {"LABELLOOP_SCHEDULER_INTERVAL": "1"}, "gpu": {"LABELLOOP_DEBUG_PROGRESS_SLEEP": "600"}}
    started = {}  # queue -> the worker that consumes it
    for name, spec in procfile_workers().items():
        queues = spec["queues"].split(",")
        worker = start_worker(
            queues=spec["queues"],
            concurrency=spec["concurrency"],
            name=name,
            beat=tick_queue in queues,
            extra_env={k: v for q in queues for k, v in envs.get(q, {}).items()},
        )
        started.update(dict.fromkeys(queues, worker))
    busy = project_factory(name="Busy project")
    run = services.training_run_enqueue(project=busy, trigger="manual")
    wait_for(
        lambda: TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists(),
        120,
        what=f"the run to start; gpu worker:\n{started['gpu'].output()[-2000:]}",
    )

    # When a manager uploads three files, and another project becomes due for its first (cold-start) run.
    manager = Client()
    manager.force_login(member_of(busy, Role.MANAGER))
    files = [SimpleUploadedFile(f"{n}.png", png(n)) for n in range(3)]
    response = manager.post(reverse("labeling:import", args=[busy.slug]), {"action": "upload", "files": files})
    assert response.status_code == 302
    upload = Job.objects.get(project=busy, kind=JobKind.IMPORT)
    due = project_factory(name="Due project")
    item_factory(project=due)

    # Then the upload is imported and the scheduler queues the due project's run, while the gpu worker still trains.
    wait_for(
        lambda: Job.objects.get(pk=upload.pk).finished,
        60,
        what=f"the upload; default worker:\n{started['default'].output()[-2000:]}",
    )
    upload.refresh_from_db()
    assert upload.status == JobStatus.SUCCEEDED, upload.message
    assert upload.result["imported"] == 3
    wait_for(
        lambda: TrainingRun.objects.filter(project=due, trigger="scheduler").exists(),
        30,
        what=f"a scheduler tick; its worker:\n{started[tick_queue].output()[-2000:]}",
    )
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    # (A worker lists every task it knows at start; "name[" is a task it received.)
    assert started["housekeeping"] not in (started["default"], started["gpu"])
    assert "training_scheduler_tick_task[" in started["housekeeping"].output()
    assert "training_scheduler_tick_task[" not in started["gpu"].output() + started["default"].output()
    assert "import_run_task[" not in started["gpu"].output() + started["housekeeping"].output()

    # And the due project's model page says its run waits behind another project's work, without naming it.
    engineer = Client()
    engineer.force_login(member_of(due, Role.ML_ENGINEER))
    page = engineer.get(reverse("training:model", args=[due.slug])).content.decode()
    assert "Queued behind: 1 job of other projects" in page
    assert busy.name not in page
    started["gpu"].kill(9)  # a graceful stop would wait for the sleeping run

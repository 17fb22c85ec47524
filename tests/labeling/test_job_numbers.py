"""A project's jobs are numbered 1, 2, 3 ... within the project (Job.number), as issues are within a repository: a new
project's first import reads "Import #1" whatever other projects ran before. URLs and API paths keep the pk."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from labeling.management.commands import export_dataset
from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from labeling.services.jobs import job_create
from tests.factories import api_client, model_export_stored, page_client, page_import, png_bytes
from training.models import ModelVersion
from training.services import exports as model_exports


@pytest.mark.django_db
def test_a_second_projects_first_import_reads_import_1(project_factory, member_of, django_capture_on_commit_callbacks):
    # Given a project that has run an import and two exports
    first = project_factory(name="First")
    first_page = page_client(member_of(first, Role.MANAGER, username="first-manager"))
    page_import(first_page, first, {"a.png": png_bytes(1)}, django_capture_on_commit_callbacks)
    job_create(project=first, kind=JobKind.EXPORT_DATASET)
    job_create(project=first, kind=JobKind.EXPORT_DATASET)

    # When a second project runs its first import
    second = project_factory(name="Second")
    page = page_client(member_of(second, Role.MANAGER, username="second-manager"))
    job = page_import(page, second, {"b.png": png_bytes(2)}, django_capture_on_commit_callbacks)

    # Then its import page names it Import #1, not by the pk that counts every project's jobs
    html = page.get(reverse("labeling:import", args=[second.slug])).content.decode()
    assert job.pk > 1
    assert "Import #1</strong>" in html
    assert f"Import #{job.pk}</strong>" not in html
    # and the first project's next job is its fourth
    assert job_create(project=first, kind=JobKind.EXPORT_DATASET).number == 4


@pytest.mark.django_db
def test_the_api_answer_keeps_id_and_adds_the_number(project_factory, member_of):
    # Given a job in a project whose pk is not its number
    other = project_factory(name="Other")
    job_create(project=other, kind=JobKind.EXPORT_DATASET)
    project = project_factory(name="Numbered")
    job = job_create(project=project, kind=JobKind.EXPORT_DATASET)
    client = api_client(member_of(project, Role.MANAGER, username="api-manager"))

    # When a script reads it, one by one and in the list
    one = client.get(reverse("api-job", args=[project.slug, job.pk])).json()
    listed = client.get(reverse("api-jobs", args=[project.slug])).json()["results"]

    # Then the path's id is still the pk, and number is what the pages show
    assert (one["id"], one["number"]) == (job.pk, 1)
    assert [(row["id"], row["number"]) for row in listed] == [(job.pk, 1)]


@pytest.mark.django_db
def test_a_queued_import_names_the_work_ahead_of_it_by_its_number(project_factory, member_of):
    # Given a project, after another project's jobs, running a label-error search with an import queued behind it
    earlier = project_factory(name="Earlier")
    job_create(project=earlier, kind=JobKind.IMPORT)
    job_create(project=earlier, kind=JobKind.IMPORT)
    project = project_factory(name="Waiting")
    search = job_create(project=project, kind=JobKind.LABEL_ERRORS, total=4)
    Job.objects.filter(pk=search.pk).update(status=JobStatus.RUNNING, done=1)
    job_create(project=project, kind=JobKind.IMPORT)
    page = page_client(member_of(project, Role.MANAGER, username="waiting-manager"))

    # When its manager opens the import page
    html = page.get(reverse("labeling:import", args=[project.slug])).content.decode()

    # Then the import says it waits behind the project's first job, by the number its card shows
    assert "Queued behind: label-error search #1 (running, 25 %), 2 jobs of other projects" in html
    assert "Import #2</strong>" in html


@pytest.mark.django_db
def test_the_model_exports_page_names_a_finished_export_by_its_number(
    project_factory, label_class_factory, item_factory, member_of, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a project with a model version v1, after another project's jobs, whose export builds a small zip
    job_create(project=project_factory(name="Earlier"), kind=JobKind.IMPORT)
    project = project_factory(name="Models")
    classes = [label_class_factory(project=project, name=n) for n in ("a", "b")]
    annotator = member_of(project, Role.ANNOTATOR, username="model-annotator")
    for i in range(2):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[i].pk])
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="arch", class_ids=[c.pk for c in classes],
        metrics={"accuracy": 0.5, "n": 2}, label_count=2, dataset_hash="d" * 64, active=True,
    )  # fmt: skip
    monkeypatch.setattr(
        model_exports,
        "model_export_build",
        lambda *, version, progress=None: model_export_stored(version, f"{project.slug}/model-v1.zip"),
    )
    page = page_client(member_of(project, Role.ML_ENGINEER, username="model-engineer"))

    # When an ML engineer exports v1 and opens the model exports page
    with django_capture_on_commit_callbacks(execute=True):
        page.post(reverse("training:model_export_start", args=[project.slug, 1]))
    html = page.get(reverse("training:model_exports", args=[project.slug])).content.decode()

    # Then the page names the export as the project's first job
    export = Job.objects.get(project=project, kind=JobKind.EXPORT_MODEL)
    assert export.pk > 1
    assert "Exported with the same labels and code (job #1)" in html
    assert "Model export #1</strong>" in html


@pytest.mark.django_db
def test_an_export_command_whose_copy_fails_names_the_job_by_its_number(
    project_factory, item_factory, label_class_factory, member_of, tmp_path, monkeypatch
):
    # Given a project with a labeled item, after another project's job, and an --out folder that a file takes the
    # place of while the export runs
    job_create(project=project_factory(name="Earlier"), kind=JobKind.IMPORT)
    project = project_factory(name="Exported")
    cat = label_class_factory(project=project, name="cat")
    annotation_create(item=item_factory(project=project), user=member_of(project, Role.ANNOTATOR), class_ids=[cat.pk])
    blocker = tmp_path / "late"
    real_run = export_dataset.dataset_export_run

    def run_then_block(**kwargs):
        result = real_run(**kwargs)
        blocker.write_bytes(b"in the way")
        return result

    monkeypatch.setattr(export_dataset, "dataset_export_run", run_then_block)

    # When the operator runs the export and the copy to --out fails
    with pytest.raises(CommandError) as failed:
        call_command("export_dataset", project.slug, "--format", "csv", "--out", f"{blocker}/", verbosity=0,
                     stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip

    # Then the error names the job as the project counts it: its first
    job = Job.objects.get(project=project)
    assert job.pk > 1
    assert str(failed.value).endswith("nothing was written to --out; job #1 failed.")


@pytest.mark.django_db(transaction=True)
def test_jobs_created_at_once_in_one_project_get_distinct_numbers(project_factory):
    # Given one project and eight requests that start a job at the same moment
    project = project_factory(name="Busy")
    start = threading.Barrier(8)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            start.wait(timeout=10)
            numbers.append(job_create(project=project, kind=JobKind.IMPORT).number)
        except BaseException as exc:  # reported below: a thread's exception would otherwise be lost
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every job was created, numbered 1 to 8 with none twice
    assert errors == []
    assert sorted(numbers) == list(range(1, 9))
    assert sorted(Job.objects.filter(project=project).values_list("number", flat=True)) == list(range(1, 9))


BEFORE = [("labeling", "0012_admin_names")]
AFTER = [("labeling", "0013_job_number")]


@pytest.mark.django_db(transaction=True)
def test_existing_jobs_are_numbered_per_project_in_creation_order_and_keep_their_pk():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        # Given two projects whose jobs were made in turns, one of them stamped earlier than its pk says
        old = executor.loader.project_state(BEFORE).apps
        project = old.get_model("labeling", "Project")
        job = old.get_model("labeling", "Job")
        cats = project.objects.create(name="Cats", slug="cats-numbers")
        dogs = project.objects.create(name="Dogs", slug="dogs-numbers")
        made = [job.objects.create(project=p, kind="import") for p in (cats, dogs, cats, dogs, cats)]
        now = timezone.now()
        for n, row in enumerate(made):
            job.objects.filter(pk=row.pk).update(created_at=now + timedelta(minutes=n))
        job.objects.filter(pk=made[4].pk).update(created_at=now - timedelta(days=1))  # the cats' first, made last

        # When the migration runs
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)

        # Then each project's jobs are numbered 1, 2, 3 ... in the order they were created, under the same pks
        numbered = executor.loader.project_state(AFTER).apps.get_model("labeling", "Job")
        assert dict(numbered.objects.values_list("pk", "number")) == {
            made[4].pk: 1,
            made[0].pk: 2,
            made[2].pk: 3,
            made[1].pk: 1,
            made[3].pk: 2,
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

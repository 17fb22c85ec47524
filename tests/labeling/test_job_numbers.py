"""A project's jobs are numbered 1, 2, 3 ... within the project (Job.number), as issues are within a repository: a new
project's first import reads "Import #1" whatever other projects ran before. URLs and API paths keep the pk."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, Role
from labeling.services.jobs import job_create
from tests.factories import api_client, page_client, page_import, png_bytes


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

"""manage.py label_errors: the search from the command line, printing what the review page shows."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes

from .test_metric_intervals_pages import COLOURS, add_open_items, colour_png, colour_project, embed_the_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def slipped(project_factory, member_of, settings):
    """24 red and 24 blue labels, one of them a red image labeled blue; open images a round embedded."""
    project, manager = colour_project(project_factory, member_of, settings, {"red": 24, "blue": 23})
    blue = project.classes.get(name="blue")
    slip = item_create_from_bytes(project=project, name="slip.png", data=colour_png(COLOURS["red"], 500))
    annotation_create(item=slip, user=manager, class_ids=[blue.pk])
    add_open_items(project, 6)
    embed_the_pool(project)
    return project, slip, manager


def test_the_command_lists_the_slip_and_the_estimates(slipped, capsys, client):
    project, slip, manager = slipped

    call_command("label_errors", project.slug)
    out = capsys.readouterr()

    assert f"Label-error search of {project.slug}: 48 labels judged" in out.out
    assert "1 suspect to review." in out.out
    assert f"item {slip.pk} (slip.png): given blue, model says red" in out.out
    assert "of its 10 most similar labeled images 10 carry red and 0 blue" in out.out
    assert "Cross-validated over 48 labeled items: accuracy 0.979 [" in out.out
    assert "Estimated on the open images (" in out.out
    assert "label errors" in out.err
    assert "done" in out.err.rsplit("label errors", 1)[-1]  # the bar ends on its last stage, full
    assert "label errors" in out.err  # the progress bar
    # ... and the review queue holds the slip, as after the page's search
    assert list(
        ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False).values_list(
            "item_id", flat=True
        )
    ) == [slip.pk]
    # ... and the model page shows the estimate the command computed
    client.force_login(manager)
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert "Cross-validated over 48 labeled items" in html
    assert 'id="cv-open"' in html
    # ... and --show 0 still counts the suspect it does not print
    call_command("label_errors", project.slug, "--show", "0")
    quiet = capsys.readouterr().out
    assert "1 suspect to review." in quiet
    assert "slip.png" not in quiet
    assert "... and 1 more" in quiet


def test_json_is_what_the_api_gives(slipped, capsys):
    project, slip, _ = slipped

    call_command("label_errors", project.slug, "--json")
    report = json.loads(capsys.readouterr().out)

    assert report["search"]["status"] == "ok"
    assert [s["item"] for s in report["search"]["suspects"]] == [slip.pk]
    assert report["cross_validated"]["open_images"]["accuracy"]["n"] == 48


def test_too_few_labels_say_why_and_a_wrong_project_is_an_error(project_factory, member_of, settings, capsys):
    project, _ = colour_project(project_factory, member_of, settings, {"red": 6, "blue": 6})

    call_command("label_errors", project.slug, verbosity=0)
    out = capsys.readouterr().out
    assert f"Label-error search of {project.slug}: too_few. Too few labels to judge" in out
    assert "Not judged (fewer than 20 labels): red (6), blue (6)" in out

    with pytest.raises(CommandError, match="No project with slug or id 'nope'"):
        call_command("label_errors", "nope")
    with pytest.raises(CommandError, match="--show"):
        call_command("label_errors", project.slug, "--show", "-1")
    # A search a worker is running is not run a second time beside it
    running = Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING)
    with pytest.raises(CommandError, match=f"is running \\(job #{running.number}\\)"):
        call_command("label_errors", project.slug)

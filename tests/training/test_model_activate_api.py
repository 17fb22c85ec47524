"""POST /api/projects/<slug>/models/<number>/activate/ makes a version active as the model page's "make active" does:
the switch and a Scoring job that re-ranks the queue with it. A version made active by hand no longer reads "not
made active" in the API: the round's reason is kept as `held_back_by_round`, beside who made it active and when."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from tests.factories import page_client, token_client
from training.models import ModelVersion, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

REASON = (
    "not made active: holdout accuracy 0.048 (0.01 to 0.23, n 21) is clearly below v4's 0.714 (0.50 to 0.86) on its "
    "own holdout of 21 items: the two 95 % intervals do not overlap"
)


@pytest.fixture
def held_back(project_factory, label_class_factory):
    """v4 active; v5, which a round held back, inactive with the round's reason in its metrics."""
    project = project_factory()
    ids = [label_class_factory(project=project, name=n, order=i).pk for i, n in enumerate(("zero", "one"))]
    for number, metrics in (
        (4, {"accuracy": 0.714, "n": 21}),
        (5, {"accuracy": 0.048, "n": 21, "not_made_active": REASON}),
    ):
        ModelVersion.objects.create(
            project=project, run=TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED),
            number=number, artifact_path=f"v{number}", architecture="resnet10t", class_ids=ids, metrics=metrics,
            active=number == 4,
        )  # fmt: skip
    return project


def url(project, number: int) -> str:
    return f"/api/projects/{project.slug}/models/{number}/activate/"


def listed(client, project) -> dict[int, dict]:
    body = client.get(f"/api/projects/{project.slug}/models/").json()
    return {v["number"]: v for v in (body["results"] if isinstance(body, dict) else body)}


def test_a_script_makes_a_held_back_version_active_and_the_queue_is_rescored(held_back, member_of):
    client = token_client(member_of(held_back, Role.ML_ENGINEER, "eng"))

    answer = client.post(url(held_back, 5))

    # 202 with the Scoring job the switch started, to poll
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(project=held_back, kind=JobKind.SCORE)
    body = answer.json()
    assert (body["id"], body["status"]) == (job.pk, JobStatus.QUEUED)
    assert answer["Location"] == body["url"]
    assert body["url"].endswith(f"/api/projects/{held_back.slug}/jobs/{job.pk}/")
    # The list says v5 is active, and no longer "not made active": the round's reason is history, with who and when
    rows = listed(client, held_back)
    assert (rows[4]["active"], rows[5]["active"]) == (False, True)
    assert "not_made_active" not in rows[5]["metrics"]
    assert rows[5]["metrics"]["held_back_by_round"] == REASON
    assert rows[5]["metrics"]["made_active_by_hand"]["by"] == "eng"
    assert rows[5]["metrics"]["made_active_by_hand"]["at"]
    detail = client.get(f"/api/projects/{held_back.slug}/models/5/").json()
    assert ("not_made_active" in detail["metrics"], detail["metrics"]["held_back_by_round"]) == (False, REASON)


def test_the_active_version_again_changes_nothing(held_back, member_of):
    client = token_client(member_of(held_back, Role.ML_ENGINEER, "eng"))

    answer = client.post(url(held_back, 4))

    assert answer.status_code == 200
    assert answer.json() == {"detail": "v4 is already the active version. Nothing changed.", "number": 4,
                             "active": True}  # fmt: skip
    assert not Job.objects.filter(project=held_back).exists()
    assert "made_active_by_hand" not in ModelVersion.objects.get(project=held_back, number=4).metrics


@pytest.mark.parametrize("who", ["unknown version", "another project's version", "annotator"])
def test_refused_activation_changes_nothing(held_back, member_of, project_factory, who):
    other = project_factory()
    ModelVersion.objects.create(project=other, number=7, artifact_path="v7", architecture="resnet10t", class_ids=[],
                                metrics={}, active=False)  # fmt: skip
    role = Role.ANNOTATOR if who == "annotator" else Role.ML_ENGINEER
    client = token_client(member_of(held_back, role, "someone"))
    number = {"unknown version": 99, "another project's version": 7, "annotator": 5}[who]

    answer = client.post(url(held_back, number))

    assert answer.status_code == (403 if who == "annotator" else 404)
    if who != "annotator":
        assert answer.json() == {"detail": "No such model version in this project."}
    assert dict(ModelVersion.objects.filter(project=held_back).values_list("number", "active")) == {4: True, 5: False}
    assert ModelVersion.objects.get(project=held_back, number=5).metrics["not_made_active"] == REASON
    assert ModelVersion.objects.get(project=other, number=7).active is False
    assert not Job.objects.exists()


def test_make_active_on_the_page_leaves_no_not_made_active_in_the_api(held_back, member_of):
    engineer = member_of(held_back, Role.ML_ENGINEER, "eng")

    page = page_client(engineer).post(reverse("training:version_activate", args=[held_back.slug, 5]), follow=True)

    # The page says by the now active version that it was switched by hand, and that its round had held it back
    row = re.search(r'<span class="made-active-by-hand[^"]*">([^<]*)</span>', page.content.decode())
    assert row is not None
    assert unescape(row[1]).strip() == "(made active by hand by eng; its round had held it back)"
    rows = listed(token_client(engineer), held_back)
    assert rows[5]["active"] is True
    assert "not_made_active" not in rows[5]["metrics"]
    assert (rows[5]["metrics"]["held_back_by_round"], rows[5]["metrics"]["made_active_by_hand"]["by"]) == (
        REASON,
        "eng",
    )


@pytest.mark.django_db(transaction=True)
def test_with_the_task_queue_down_the_version_is_active_and_the_job_says_why(held_back, member_of, monkeypatch):
    from labeling.services import dispatch

    monkeypatch.setattr(dispatch, "task_send", lambda *args: False)
    client = token_client(member_of(held_back, Role.ML_ENGINEER, "eng"))

    answer = client.post(url(held_back, 5))

    assert answer.status_code == 202
    assert answer.json()["status"] == JobStatus.FAILED
    assert answer.json()["message"] == dispatch.BROKER_DOWN
    assert listed(client, held_back)[5]["active"] is True

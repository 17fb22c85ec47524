"""Attacks on the API from the outside security test: each performs the attack and checks it is refused."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.api.tokens import token_replace
from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from labeling.services.reviews import item_gold_set
from tests.factories import token_client
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

HUGE = 2**64


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(project_factory, item_factory, label_class_factory, member_of):
    """A project with a gold item, an item another annotator labeled, and an import job from a server folder."""
    project = project_factory(slug="hard")
    cat, dog = label_class_factory(project=project, name="cat"), label_class_factory(project=project, name="dog")
    ann, other = member_of(project, Role.ANNOTATOR, "ann"), member_of(project, Role.ANNOTATOR, "other")
    gold, labeled, fresh = (item_factory(project=project) for _ in range(3))
    item_gold_set(item=gold, class_ids=[dog.pk])
    annotation_create(item=labeled, user=other, class_ids=[cat.pk])
    job = Job.objects.create(
        project=project, kind=JobKind.IMPORT, status=JobStatus.FAILED, message="No folder /srv/secret/photos",
        params={"sources": [{"folder": "/srv/secret/photos"}]}, errors=[{"name": "/srv/secret/photos/a.png"}],
    )  # fmt: skip
    return {"project": project, "cat": cat, "dog": dog, "ann": ann, "gold": gold, "labeled": labeled,
            "fresh": fresh, "job": job, "member_of": member_of}  # fmt: skip


# ---- annotators see only what labeling needs ------------------------------------------------------------------


@pytest.mark.parametrize("query", [{"is_gold": "true"}, {"state": "labeled"}, {"label_class": 1}, {"is_gold": "false"}])
def test_an_annotator_cannot_find_gold_or_labeled_items_by_filter(world, query):
    answer = token_client(world["ann"]).get("/api/projects/hard/items/", query)
    assert answer.status_code == 403
    assert "may not filter" in answer.json()["detail"]


def test_an_annotator_sees_items_without_labels_gold_flags_or_state(world):
    client = token_client(world["ann"])
    rows = client.get("/api/projects/hard/items/", {"split": "train"}).json()["results"]
    gold = client.get(f"/api/projects/hard/items/{world['gold'].pk}/").json()
    labeled = client.get(f"/api/projects/hard/items/{world['labeled'].pk}/").json()

    assert len(rows) == 3
    for row in [*rows, gold, labeled]:
        assert not {"is_gold", "labels", "label_source", "state", "annotation_count", "priority"} & set(row)
        assert f"/{row['id']}/thumb/?v=" in row["thumbnail_url"]


def test_a_reviewer_still_sees_labels_and_gold(world):
    reviewer = world["member_of"](world["project"], Role.REVIEWER, "rev")
    client = token_client(reviewer)
    gold = client.get("/api/projects/hard/items/", {"is_gold": "true"}).json()["results"]
    labeled = client.get(f"/api/projects/hard/items/{world['labeled'].pk}/").json()
    assert [row["id"] for row in gold] == [world["gold"].pk]
    assert labeled["labels"] == [world["cat"].pk]


def test_an_annotator_sees_job_progress_but_no_server_paths(world):
    client = token_client(world["ann"])
    listed = client.get("/api/projects/hard/jobs/")
    one = client.get(f"/api/projects/hard/jobs/{world['job'].pk}/")
    assert listed.status_code == one.status_code == 200
    assert "/srv/secret" not in listed.content.decode() + one.content.decode()
    assert one.json()["status"] == "failed"
    ml = token_client(world["member_of"](world["project"], Role.ML_ENGINEER, "ml"))
    assert "/srv/secret" in ml.get(f"/api/projects/hard/jobs/{world['job'].pk}/").content.decode()


# ---- bad input answers 4xx, never 5xx ---------------------------------------------------------------------------


def cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize("url", ["/api/projects/", "/api/projects/hard/items/", "/api/projects/hard/jobs/",
                                 "/api/projects/hard/runs/", "/api/projects/hard/predictions/"])  # fmt: skip
@pytest.mark.parametrize("position", ["abc", "-1", "1.5", "1e3", str(2**63), str(2**70), "\u0661"])
def test_a_crafted_cursor_is_a_404(world, url, position):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world["member_of"](world["project"], Role.MANAGER, "boss"))
    answer = client.get(url, {"cursor": cursor(f"p={position}")})
    assert answer.status_code == 404
    assert answer.json()["detail"] == "Invalid cursor"


def test_a_real_cursor_still_pages(world):
    client = APIClient()
    client.force_authenticate(world["member_of"](world["project"], Role.MANAGER, "boss"))
    first = client.get("/api/projects/hard/items/", {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    assert [r["id"] for r in first["results"] + second["results"]] == sorted(
        [world["gold"].pk, world["labeled"].pk, world["fresh"].pk]
    )


@pytest.mark.parametrize(
    ("method", "url", "body", "expected"),
    [
        ("post", "/api/projects/hard/annotations/", {"item_id": HUGE, "class_ids": [1]}, 400),
        ("post", "/api/projects/hard/annotations/", {"item_id": 1, "class_ids": [HUGE]}, 400),
        ("post", "/api/projects/hard/annotations/", {"item_id": -HUGE, "class_ids": [1]}, 400),
        ("post", f"/api/projects/hard/items/{HUGE}/skip/", {}, 404),
        ("get", f"/api/projects/hard/items/{HUGE}/", None, 404),
        ("get", f"/api/projects/hard/jobs/{HUGE}/", None, 404),
    ],
)
def test_ids_above_2_to_the_63_are_refused_not_a_server_error(world, method, url, body, expected):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world["ann"])
    answer = getattr(client, method)(url, body, format="json")
    assert answer.status_code == expected


# ---- tokens -------------------------------------------------------------------------------------------------------


def test_looking_at_my_token_never_makes_one_and_is_never_cached(world):
    session = APIClient()
    session.force_login(world["ann"])

    shown = session.get("/api/me/token/")

    assert shown.status_code == 200
    assert shown.json()["token"] is None
    assert not Token.objects.filter(user=world["ann"]).exists()
    assert shown["Cache-Control"] == "no-store"
    made = session.post("/api/me/token/")
    assert made["Cache-Control"] == "no-store"
    assert session.get("/api/me/token/").json()["token"] == made.json()["token"]


def test_the_docs_page_is_never_cached_and_only_a_post_makes_a_token(world):
    browser = Client()
    browser.force_login(world["ann"])

    page = browser.get("/api/docs/")

    assert page["Cache-Control"] == "no-store"
    assert not Token.objects.filter(user=world["ann"]).exists()
    assert 'id="api-token-missing"' in page.content.decode()
    browser.post("/api/docs/")
    key = Token.objects.get(user=world["ann"]).key
    again = browser.get("/api/docs/")
    assert key in again.content.decode()
    assert again["Cache-Control"] == "no-store"


def test_the_password_exchange_is_throttled(world, settings):
    world["ann"].set_password("right")
    world["ann"].save()
    client = APIClient()
    # Ten guesses from one address, over ten usernames (five at one username lock it out: test_auth_limits.py)
    answers = [
        client.post("/api/auth/token/", {"username": f"user{i}", "password": f"guess{i}"}).status_code
        for i in range(10)
    ]
    assert answers == [400] * 10

    blocked = client.post("/api/auth/token/", {"username": "ann", "password": "right"})

    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    # A forged X-Forwarded-For does not buy a fresh count.
    forged = client.post("/api/auth/token/", {"username": "ann", "password": "right"}, HTTP_X_FORWARDED_FOR="10.9.8.7")
    assert forged.status_code == 429


def test_making_tokens_from_a_session_is_throttled(world):
    session = APIClient()
    session.force_login(world["ann"])
    codes = [session.post("/api/me/token/").status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    assert session.get("/api/me/token/").status_code == 200  # reading is not throttled


def test_the_password_exchange_answers_a_token_that_works_and_is_never_cached(world):
    world["ann"].set_password("right")
    world["ann"].save()
    answer = APIClient().post("/api/auth/token/", {"username": "ann", "password": "right"})
    assert answer["Cache-Control"] == "no-store"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    assert client.get("/api/projects/hard/next/").status_code == 200


def change_password_by_command(user) -> None:
    call_command("changepassword", user.username)  # getpass is answered by the test


def change_password_in_the_admin(user) -> None:
    staff = get_user_model().objects.create_superuser("root", password="root-pw")
    admin = Client()
    admin.force_login(staff)
    answer = admin.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]


def change_own_password_in_the_admin(user) -> None:
    browser = Client()
    browser.force_login(user)
    answer = browser.post(
        "/admin/password_change/",
        {"old_password": "old-pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]


NEW_PASSWORD = "a-new-Passw0rd-42"


@pytest.mark.parametrize("change", [change_password_by_command, change_password_in_the_admin,
                                    change_own_password_in_the_admin])  # fmt: skip
def test_a_token_stops_working_when_the_password_changes(world, monkeypatch, change):
    # given: a staff member's token made with the old password (it may have leaked), in use
    user = world["ann"]
    user.is_staff = True
    user.set_password("old-pw")
    user.save()
    old_key = token_replace(user=user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    assert client.get("/api/projects/hard/next/").status_code == 200
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    # when: the password is changed, and the old token used
    change(user)
    answer = client.get("/api/projects/hard/next/")

    # then: refused, and the new password gets a new, working token
    assert answer.status_code == 401
    assert "password changed" in answer.json()["detail"]
    fresh = APIClient().post("/api/auth/token/", {"username": "ann", "password": NEW_PASSWORD}).json()["token"]
    assert fresh != old_key
    client.credentials(HTTP_AUTHORIZATION=f"Token {fresh}")
    assert client.get("/api/projects/hard/next/").status_code == 200


def test_a_nul_byte_in_a_server_folder_path_is_refused_not_a_server_error(world, settings, tmp_path):
    # given: staff, who may import from the server folders, and a model to run inference with
    settings.LABELLOOP_IMPORT_ROOTS = [str(tmp_path)]
    (tmp_path / "photos").mkdir()
    staff = world["member_of"](world["project"], Role.MANAGER, "staff")
    staff.is_staff = True
    staff.save()
    ModelVersion.objects.create(project=world["project"], number=1, artifact_path="x", architecture="a", active=True)
    crafted = f"{tmp_path}/photos\x00/../../etc"
    browser = Client(raise_request_exception=False)
    browser.force_login(staff)
    jobs_before = Job.objects.count()

    # when: the import page and the inference API get a folder path with a NUL byte
    page = browser.post("/p/hard/import/", {"action": "folder", "path": crafted})
    answer = token_client(staff).post("/api/projects/hard/inference/", {"folder": crafted}, format="json")

    # then: both refuse it with a reason, and no job is made
    assert page.status_code == 400
    assert "No such folder" in page.content.decode()
    assert answer.status_code == 400
    assert Job.objects.count() == jobs_before

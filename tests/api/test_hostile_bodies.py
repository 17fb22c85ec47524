"""Hostile request bodies from the outside security test: each is refused with a JSON answer that says what was wrong,
and nothing is saved.

- JSON nested thousands deep made Python's json raise RecursionError, which no parser turned into a parse error:
  500 with the HTML error page, even on the sign-in endpoint without a token. Now 400, as malformed JSON gets.
- A body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE got Django's HTML "Bad Request (400)". Now 413 in JSON, naming
  the limit.
- The 429 of the job limit ("You already have 5 exports…") had no Retry-After, unlike the throttle's 429.
"""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Annotation, Item, Job, JobKind, JobStatus, Role
from tests.factories import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(project_factory, item_factory, label_class_factory, member_of):
    project = project_factory(slug="hostile")
    cat = label_class_factory(project=project, name="cat")
    item = item_factory(project=project)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    manager = member_of(project, Role.MANAGER, "boss")
    return {"project": project, "cat": cat, "item": item, "annotator": annotator, "manager": manager}


def labeled_once(world) -> None:
    """The world's item labeled: a dataset export that matches no item is refused before the job limit is asked."""
    from labeling.services.annotations import annotation_create

    annotation_create(item=world["item"], user=world["annotator"], class_ids=[world["cat"].pk])


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def saved(world) -> dict:
    """What a refused request must leave as it was."""
    item = Item.objects.get(pk=world["item"].pk)
    return {
        "annotations": Annotation.objects.count(),
        "jobs": Job.objects.count(),
        "tokens": sorted(Token.objects.values_list("key", flat=True)),
        "item": (item.state, item.annotation_count),
    }


def assert_json_refusal(answer, status: int, *words: str) -> str:
    assert answer.status_code == status, answer.content[:300]
    assert answer["Content-Type"].startswith("application/json")
    detail = answer.json()["detail"]
    for word in words:
        assert word in detail
    return detail


# ---- deeply nested JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [nested_list(3000), nested_object(3000), nested_list(100_000)])
def test_deeply_nested_json_on_the_sign_in_endpoint_is_a_json_parse_error_without_a_token(world, body):
    before = saved(world)

    answer = APIClient().post("/api/auth/token/", data=body, content_type="application/json")

    detail = assert_json_refusal(answer, 400, "JSON parse error", "nested")
    assert "Traceback" not in detail
    assert saved(world) == before


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deeply_nested_json_on_the_labeling_api_is_refused_and_labels_nothing(world, depth):
    client = token_client(world["annotator"])
    before = saved(world)

    answer = client.post("/api/projects/hostile/annotations/", data=nested_list(depth), content_type="application/json")

    assert_json_refusal(answer, 400, "JSON parse error", "nested")
    assert saved(world) == before
    # The same client labels normally right after
    good = client.post(
        "/api/projects/hostile/annotations/",
        data={"item_id": world["item"].pk, "class_ids": [world["cat"].pk]},
        format="json",
    )
    assert good.status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # Nested where a field's value goes, not at the top
        ("/api/projects/hostile/annotations/", b'{"item_id": 1, "class_ids": ' + nested_list(4000) + b"}"),
        ("/api/projects/hostile/exports/dataset/", b'{"format": "csv", "classes": ' + nested_list(4000) + b"}"),
        # A view that picks its own parsers (batch inference also takes multipart)
        ("/api/projects/hostile/inference/", nested_object(4000)),
    ],
)
def test_deep_nesting_is_refused_wherever_it_sits_and_whichever_view_parses_it(world, path, body):
    client = token_client(world["manager"])
    before = saved(world)

    answer = client.post(path, data=body, content_type="application/json")

    assert_json_refusal(answer, 400, "JSON parse error", "nested")
    assert saved(world) == before


def test_nesting_that_parses_is_still_judged_by_the_fields(world):
    # Shallow enough for the parser: the serializer answers with what the field wants, not a 500
    body = json.dumps({"item_id": world["item"].pk, "class_ids": json.loads(nested_list(200))})

    answer = token_client(world["annotator"]).post(
        "/api/projects/hostile/annotations/", data=body, content_type="application/json"
    )

    assert answer.status_code == 400
    assert "class_ids" in answer.json()
    assert Annotation.objects.count() == 0


# ---- bodies over the upload limit ----------------------------------------------------------------------------


def padded_annotation(world, size: int) -> bytes:
    """A valid annotation request, padded with spaces to `size` bytes."""
    body = json.dumps({"item_id": world["item"].pk, "class_ids": [world["cat"].pk]}).encode()
    return body + b" " * (size - len(body))


def test_a_body_over_the_default_limit_gets_413_in_json_naming_the_limit(world, settings):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    client = token_client(world["annotator"])
    before = saved(world)

    answer = client.post(
        "/api/projects/hostile/annotations/", data=padded_annotation(world, limit + 1), content_type="application/json"
    )

    assert_json_refusal(answer, 413, f"{limit:,} bytes")
    assert saved(world) == before


def test_the_limit_is_the_setting_and_a_body_under_it_still_works(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    client = token_client(world["annotator"])
    url = "/api/projects/hostile/annotations/"

    over = client.post(url, data=padded_annotation(world, 2001), content_type="application/json")
    assert_json_refusal(over, 413, "2,000 bytes")
    assert Annotation.objects.count() == 0

    under = client.post(url, data=padded_annotation(world, 2000), content_type="application/json")
    assert under.status_code == 201
    assert Annotation.objects.count() == 1


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_limit_on_the_sign_in_endpoint_gets_413_in_json(world, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"username": "ann", "password": "x" * 2000}).encode()
    if content_type != "application/json":
        body = b"username=ann&password=" + b"x" * 2000
    before = saved(world)

    answer = APIClient().post("/api/auth/token/", data=body, content_type=content_type)

    assert_json_refusal(answer, 413, "1,000 bytes")
    assert saved(world) == before


def test_too_many_form_fields_or_query_parameters_get_400_in_json(world, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client = token_client(world["manager"])
    fields = "&".join(f"f{n}=1" for n in range(20))
    before = saved(world)

    posted = client.post(
        "/api/projects/hostile/exports/dataset/", data=f"format=csv&{fields}",
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    listed = client.get(f"/api/projects/hostile/items/?{fields}")

    assert_json_refusal(posted, 400, "More than 10 form fields")
    assert_json_refusal(listed, 400, "More than 10 form fields or query parameters")
    assert saved(world) == before


# ---- the job limit's 429 -------------------------------------------------------------------------------------


def test_the_job_limit_429_says_when_to_retry(world, settings):
    settings.LABELLOOP_MAX_QUEUED_JOBS_PER_USER = 1
    labeled_once(world)
    Job.objects.create(project=world["project"], kind=JobKind.EXPORT_DATASET, status=JobStatus.QUEUED,
                       created_by=world["manager"], params={"format": "jsonl"})  # fmt: skip
    client = token_client(world["manager"])
    before = saved(world)

    answer = client.post("/api/projects/hostile/exports/dataset/", {"format": "csv"}, format="json")

    detail = assert_json_refusal(answer, 429, "You already have 1 exports or inference jobs queued or running")
    assert int(answer["Retry-After"]) > 0
    # The header says when to ask again; the message still says what to do, with no made-up ETA
    assert detail.endswith("Wait for one to finish, then start this one again.")
    assert saved(world) == before

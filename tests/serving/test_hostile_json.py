"""JSON nested far deeper than anyone sends (the outside security test sent {"images": [[[... 50,000 deep) made
Python's json raise RecursionError, which the service answered with 500 "internal error; the service logged it".
It is malformed input like any other: 400 with a JSON error that says so, nothing predicted or logged, and the
service answers the next request as before."""

from __future__ import annotations

import pytest

from serving.models import PredictionLog

pytestmark = pytest.mark.django_db


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


THE_ATTACK = b'{"images": ' + nested(50_000) + b"}"


@pytest.mark.parametrize(
    "body",
    [THE_ATTACK, b'{"image": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}", nested(3000)],
    ids=["images-50000-deep", "image-object-50000-deep", "top-level-3000-deep"],
)
def test_deeply_nested_json_is_refused_as_invalid_json(model_project, api_key, predict, body):
    project, _, _ = model_project
    _, token = api_key(project)

    status, answer = predict(project.slug, token, body=body)

    assert status == 400
    assert answer == {"error": "the body is not valid JSON: arrays or objects nested too deeply"}
    assert predict.log.records == []
    assert PredictionLog.objects.count() == 0


def test_the_service_answers_the_next_request_as_before(served_project, api_key, predict):
    project, _, items, _ = served_project
    _, token = api_key(project)
    assert predict(project.slug, token, body=THE_ATTACK)[0] == 400

    status, answer = predict(project.slug, token, images=[items[0].file.read()])

    assert status == 200, answer
    assert len(answer["predictions"]) == 1
    assert len(predict.log.records) == 1

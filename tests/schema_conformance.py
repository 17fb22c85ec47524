"""Does an API answer match what the OpenAPI schema says of it? A client generated from the schema reads the answer
by it, so a field missing from the schema, or of another type, is a client that breaks."""

from __future__ import annotations

import json
from functools import cache

import requests
import schemathesis
from schemathesis.core.transport import Response


@cache
def _schema():
    from config.api_urls import _schema as build

    return schemathesis.openapi.from_dict(json.loads(json.dumps(build(), default=str)))


def assert_matches_schema(answer, path: str, method: str = "GET") -> None:
    """Raise (failing the test) where the Django test `answer` does not conform to the schema's response for
    `method` `path` (the schema's path template, "/api/projects/{slug}/label-errors/")."""
    request = requests.Request(method, f"http://testserver{answer.wsgi_request.get_full_path()}").prepare()
    response = Response(
        status_code=answer.status_code,
        headers={key.lower(): [value] for key, value in answer.headers.items()},
        content=answer.content,
        request=request,
        elapsed=0.0,
        verify=True,
    )
    _schema()[path][method].validate_response(response)

"""A bounded fuzz run of the whole API at the edges: ids and cursors at their extremes never give a 5xx.

schemathesis draws a few requests per operation from the OpenAPI schema; each one is then sent again with every
integer path parameter, integer query parameter and integer body field set to each extreme (0, negative, 2^31,
2^63 - 1, 2^63, 2^64, far past), and every list's cursor replaced by crafted ones (positions that are not ids or
past 2^63, huge offsets, not base64). Runs through the real WSGI application with a manager's token.
"""

from __future__ import annotations

import base64
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig

from config.api_urls import _schema
from config.wsgi import application
from tests.api.conftest import FUZZ_SLUG

pytestmark = pytest.mark.django_db

RAW = json.loads(json.dumps(_schema(), default=str))
schema = schemathesis.openapi.from_dict(
    RAW, config=SchemathesisConfig.from_dict({"parameters": {"path.slug": FUZZ_SLUG}})
)
schema.app = application
# Rotating the token mid-run would log the fuzzer out; that endpoint has its own tests.
schema = schema.exclude(path="/api/me/token/", method="POST")

EXTREME_INTS = [0, -1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40]


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


EXTREME_CURSORS = [
    *(_cursor(f"p={value}") for value in [*EXTREME_INTS, "abc", "1.5", "", "1%00"]),
    _cursor(f"o={2**64}&p=1"),
    _cursor("o=-5"),
    _cursor("r=2"),
    _cursor("r=1&p=-1"),
    "not base64!",
    "%00",
    "A" * 4000,
]


def _component(ref: dict) -> dict:
    return RAW["components"]["schemas"].get(ref.get("$ref", "").rsplit("/", 1)[-1], ref)


def integer_inputs(path: str, method: str) -> tuple[list[str], list[str], list[tuple[str, bool]], bool]:
    """(integer path parameters, integer query parameters, integer body fields as (name, is_list), has a cursor)."""
    op = RAW["paths"][path][method.lower()]
    params = op.get("parameters", [])
    in_path = [p["name"] for p in params if p["in"] == "path" and p.get("schema", {}).get("type") == "integer"]
    in_query = [p["name"] for p in params if p["in"] == "query" and p.get("schema", {}).get("type") == "integer"]
    body = _component((op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema", {}))
    fields = []
    for name, prop in body.get("properties", {}).items():
        if prop.get("type") == "integer":
            fields.append((name, False))
        elif prop.get("type") == "array" and prop.get("items", {}).get("type") == "integer":
            fields.append((name, True))
    return in_path, in_query, fields, any(p["name"] == "cursor" for p in params)


@schema.parametrize()
# Two drawn requests per operation (no explicit examples: the extremes below are the explicit part).
@settings(max_examples=2, phases=[Phase.generate], deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_ids_and_cursors_at_their_extremes_never_give_a_server_error(case, fuzz_token):
    headers = {"Authorization": f"Token {fuzz_token}"}
    in_path, in_query, in_body, has_cursor = integer_inputs(case.operation.path, case.method)
    variants: list[tuple[str, str, object]] = [("path", name, v) for name in in_path for v in EXTREME_INTS]
    variants += [("query", name, v) for name in in_query for v in EXTREME_INTS]
    variants += [("query", "cursor", c) for c in EXTREME_CURSORS if has_cursor]
    variants += [("body", name, [v] if is_list else v) for name, is_list in in_body for v in EXTREME_INTS]
    failures = []
    for where, name, value in variants:
        path, query, body = dict(case.path_parameters or {}), dict(case.query or {}), case.body
        media_type = case.media_type
        if where == "path":
            path[name] = value
        elif where == "query":
            query[name] = value
        else:
            body, media_type = {**(body if isinstance(body, dict) else {}), name: value}, "application/json"
        variant = case.operation.Case(path_parameters=path, query=query, body=body, media_type=media_type)
        response = variant.call(headers=headers)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.operation.path} {where} {name}={str(value)[:60]}: {response.status_code}"
            )
    assert not failures, "\n".join(failures)

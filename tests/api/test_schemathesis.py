"""Property-based fuzzing of the whole REST API from its OpenAPI schema: no input makes it answer 5xx.

schemathesis generates requests for every operation (valid and invalid parameters and bodies) and sends
them through the real WSGI application with a manager's token, against a project that has items, labels,
jobs and a model version (tests/api/conftest.py). Examples per operation are limited to keep the run short;
test_fuzz_extremes.py sends ids and cursors at their extremes.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from config.api_urls import _schema
from config.wsgi import application
from tests.api.conftest import FUZZ_SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CONFIG = SchemathesisConfig.from_dict({"parameters": {"path.slug": FUZZ_SLUG}})
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(_schema(), default=str)), config=CONFIG)
schema.app = application
# Rotating the token mid-run would log the fuzzer out; that endpoint has its own tests.
schema = schema.exclude(path="/api/me/token/", method="POST")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_fuzzed_input_without_a_server_error(case, fuzz_token):
    response = case.call(headers={"Authorization": f"Token {fuzz_token}"})
    # validate_response raises, failing the example, when the answer is a 5xx
    case.validate_response(response, checks=[not_a_server_error])

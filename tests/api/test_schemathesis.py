"""Property-based fuzzing of the whole REST API from its OpenAPI schema: no input makes it answer 5xx.

schemathesis generates requests for every operation (valid and invalid parameters and bodies) and sends
them through the real WSGI application with a manager's token, against a project that has items, labels,
jobs and a model version. Examples per operation are limited to keep the run short.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from config.api_urls import _schema
from config.wsgi import application
from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SLUG = "fuzz"
CONFIG = SchemathesisConfig.from_dict({"parameters": {"path.slug": SLUG}})
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(_schema(), default=str)), config=CONFIG)
schema.app = application
# Rotating the token mid-run would log the fuzzer out; that endpoint has its own tests.
schema = schema.exclude(path="/api/me/token/", method="POST")


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Like Django's test Client: the raw WSGI handler must not close the test transaction's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(wsgi_keeps_the_test_connection, project_factory, item_factory, label_class_factory, member_of) -> str:
    project = project_factory(slug=SLUG)
    classes = [label_class_factory(project=project, name=n) for n in ("cat", "dog")]
    manager = member_of(project, Role.MANAGER, "fuzzer")
    for i in range(5):
        item = item_factory(project=project)
        if i < 3:
            annotation_create(item=item, user=manager, class_ids=[classes[i % 2].pk])
    Job.objects.create(project=project, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED,
                       result={"files": ["fuzz/missing.zip"]})  # fmt: skip
    ModelVersion.objects.create(project=project, number=1, artifact_path="missing", architecture="x",
                                class_ids=[c.pk for c in classes], active=True)  # fmt: skip
    return Token.objects.create(user=manager).key


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_api_fail_with_a_server_error(case, token):
    response = case.call(headers={"Authorization": f"Token {token}"})
    case.validate_response(response, checks=[not_a_server_error])

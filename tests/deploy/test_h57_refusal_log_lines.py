"""A refused request is one log line: an annotator opening a manager's page logs "Forbidden" without the
PermissionDenied traceback Django attaches (tester h57 P8: every 403 wrote 20 lines that read like a crash).
A server error keeps its traceback."""

import logging
import sys

import pytest
from django.urls import reverse

from config.logging import ClientErrorsWithoutTraceback, JsonFormatter
from labeling.models import Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def _request_records(caplog):
    return [r for r in caplog.records if r.name == "django.request"]


def test_a_403_page_logs_one_line_without_the_traceback(caplog, project_factory, member_of):
    project = project_factory(slug="alpha")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    client = page_client(annotator)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(reverse("labeling:project_settings", args=[project.slug]))
    assert response.status_code == 403
    (record,) = _request_records(caplog)
    assert record.status_code == 403
    assert record.getMessage().startswith("Forbidden")
    assert record.exc_info is None
    formatted = logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)
    assert "Traceback" not in formatted
    assert "\n" not in formatted
    assert "exc_info" not in JsonFormatter().format(record)


def test_a_server_error_record_keeps_its_traceback():
    try:
        raise RuntimeError("database went away")
    except RuntimeError:
        exc = sys.exc_info()
    logger = logging.getLogger("django.request")
    record = logger.makeRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/p/",),
                               exc, extra={"status_code": 500})  # fmt: skip
    assert ClientErrorsWithoutTraceback().filter(record)
    assert record.exc_info is exc
    assert "RuntimeError: database went away" in logging.Formatter().format(record)

"""The settings page reads the class table once for its class rows, their paths, the labeling keys column and the
add-class form's parents, and its query count does not grow with the number of classes."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from labeling.models import LabelClass, Role
from labeling.services.projects import label_class_archive, label_classes_from_paths

pytestmark = pytest.mark.django_db


def _settings_page(project, user) -> tuple[str, list[str]]:
    client = Client()
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(f"/p/{project.slug}/settings/?classes=open")
    assert answer.status_code == 200
    return answer.content.decode(), [q["sql"] for q in queries.captured_queries]


def _class_table_reads(sql: list[str]) -> list[str]:
    return [q for q in sql if re.search(r'FROM "?labeling_labelclass"?', q)]


def test_the_settings_page_reads_the_class_table_once_whatever_the_number_of_classes(project_factory, member_of):
    # Given a 3-class project and a 300-class, 4-level taxonomy with an archived branch and an archived leaf
    small, large = project_factory(slug="small"), project_factory(slug="large")
    label_classes_from_paths(project=small, paths=["cat", "dog", "bird"])
    label_classes_from_paths(project=large, paths=[f"g{i % 4}/s{i % 7}/t{i % 3}/leaf{i}" for i in range(300)])
    label_class_archive(project=large, class_id=large.classes.get(name="g3").pk)
    label_class_archive(project=large, class_id=large.classes.get(name="leaf10").pk)
    assert LabelClass.objects.filter(project=large).count() > 300
    boss = member_of(small, Role.MANAGER, "boss")
    member_of(large, Role.MANAGER, "boss")

    # When a manager opens each project's settings page
    small_html, small_sql = _settings_page(small, boss)
    large_html, large_sql = _settings_page(large, boss)

    # Then both pages cost the same number of queries, one of them a read of the class table, which serves the rows,
    # their paths, the keys column and the add-class form's parents alike (the form reads its own tree only when it
    # draws its options, which this page draws from its table).
    assert len(large_sql) == len(small_sql)
    assert len(_class_table_reads(large_sql)) == 1, _class_table_reads(large_sql)
    assert len(_class_table_reads(small_sql)) == 1
    assert sum('"hotkey"' in q for q in _class_table_reads(large_sql)) == 1  # the rows: read once, whole
    # ...and what it shows is worked out from that read: paths, keys (none for an archived class), parents
    assert "<td>cat</td>" in small_html
    assert "g0 / s0 / t0 / leaf0" in large_html
    row = re.search(r'<tr id="class-\d+"><td>g1 / s1 / t1 / leaf1</td><td class="label-keys">(.*?)</td>', large_html)
    assert row is not None
    assert re.sub(r"<[^>]+>", "", row.group(1)).count("→") == 3  # one key per level
    archived = re.search(r'<tr id="class-\d+" class="muted"><td>g2 / s3 / t1 / leaf10</td><td class="label-keys">'
                         r'<span class="muted">archived</span>', large_html)  # fmt: skip
    assert archived is not None
    parents = re.findall(r'<option value="\d+">([^<]*)</option>', large_html)
    assert "g0 / s0 / t0" in parents
    assert "g2 / s3 / t1 / leaf10" not in parents  # archived: no new class goes under it
    assert "g3" not in parents

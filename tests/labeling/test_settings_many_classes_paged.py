"""The settings page of a 10,000-class taxonomy: the class table a page at a time with a find box, and a parent typed
as a path instead of a 10,000-option menu. Reported: 8.9 MB of HTML that Chromium had not drawn after 130 s."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from labeling.models import LabelClass, Role
from labeling.selectors.class_table import CLASS_TABLE_PAGE_ROWS
from labeling.services.projects import label_classes_from_paths

pytestmark = pytest.mark.django_db

DEEP = "top 8 / mid 160 / leaf 1600 / part 8000"


def ten_thousand_paths() -> list[str]:
    # 9 tops, 164 mids, 1,638 leaves and 8,189 parts: 10,000 classes, four levels
    return [f"top {i // 1000}/mid {i // 50}/leaf {i // 5:04d}/part {i}" for i in range(8189)]


@pytest.fixture
def atlas(project_factory, member_of):
    project = project_factory(slug="atlas")
    label_classes_from_paths(project=project, paths=ten_thousand_paths())
    client = Client()
    client.force_login(member_of(project, Role.MANAGER, "mia"))
    return project, client


def _get(client, url) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(url)
    assert answer.status_code == 200
    return answer.content.decode(), len(queries)


def test_a_ten_thousand_class_settings_page_is_small_and_costs_what_a_small_one_does(atlas, project_factory, member_of):
    project, client = atlas
    assert LabelClass.objects.filter(project=project).count() == 10000
    small = project_factory(slug="small")
    label_classes_from_paths(project=small, paths=["cat", "dog"])
    member_of(small, Role.MANAGER, "mia")

    html, queries = _get(client, f"/p/{project.slug}/settings/")
    _small_html, small_queries = _get(client, f"/p/{small.slug}/settings/")

    assert len(html.encode()) < 400_000, len(html.encode())
    assert queries == small_queries
    assert len(re.findall(r'<tr id="class-\d+"', html)) == CLASS_TABLE_PAGE_ROWS
    assert f"Classes 1–{CLASS_TABLE_PAGE_ROWS} of 10,000, page 1 of 50." in html  # noqa: RUF001 (the page's dash)
    assert "<select" not in html.split('name="action" value="class"')[1].split("</form>")[0]  # no 10,000-option menu
    assert 'name="parent_path"' in html
    # The next page is the next 200 rows
    page2, _ = _get(client, f"/p/{project.slug}/settings/?classes_page=2")
    assert f"Classes {CLASS_TABLE_PAGE_ROWS + 1}–{2 * CLASS_TABLE_PAGE_ROWS} of 10,000, page 2 of 50." in page2  # noqa: RUF001
    assert not set(re.findall(r'id="class-(\d+)"', page2)) & set(re.findall(r'id="class-(\d+)"', html))


def test_a_manager_finds_and_renames_a_deep_class_and_adds_one_under_a_deep_parent(atlas):
    project, client = atlas
    deep = LabelClass.objects.get(project=project, name="part 8000")

    # Find: the class deep in the tree is on the page, with its rename form
    html, _ = _get(client, f"/p/{project.slug}/settings/?classes_find=part+8000")
    assert f'<tr id="class-{deep.pk}"><td>{DEEP}</td>' in html
    assert f"/classes/{deep.pk}/rename/" in html

    # Rename: the page it returns to shows the renamed row
    answer = client.post(f"/p/{project.slug}/classes/{deep.pk}/rename/", {"name": "piece 8000"}, follow=True)
    page = answer.content.decode()
    assert "“part 8000” is now “piece 8000”." in page
    assert f'<tr id="class-{deep.pk}"><td>top 8 / mid 160 / leaf 1600 / piece 8000</td>' in page
    assert len(page.encode()) < 400_000

    # Add a class under the deep parent, typed as the page shows paths
    parent_path = "top 8 / mid 160 / leaf 1600 / piece 8000"
    answer = client.post(
        f"/p/{project.slug}/settings/", {"action": "class", "name": "detail", "parent_path": parent_path}, follow=True
    )
    assert f"Class “{parent_path} / detail” added: keys 9 → 1 → 1 → 1 → 1 when labeling." in answer.content.decode()
    assert LabelClass.objects.get(project=project, name="detail").parent_id == deep.pk
    html, _ = _get(client, f"/p/{project.slug}/settings/?classes_find=detail")
    assert f"{parent_path} / detail" in html

    # A parent that is no class is refused by name, and nothing is added
    answer = client.post(
        f"/p/{project.slug}/settings/", {"action": "class", "name": "stray", "parent_path": "top 9 / nowhere"}
    )
    assert "No class has the path “top 9 / nowhere”" in answer.content.decode()
    assert not LabelClass.objects.filter(project=project, name="stray").exists()


def test_archiving_a_class_of_a_paged_table_returns_to_its_row(atlas):
    project, client = atlas
    deep = LabelClass.objects.get(project=project, name="part 8000")

    answer = client.post(f"/p/{project.slug}/classes/{deep.pk}/archive/", follow=True)

    assert LabelClass.objects.get(pk=deep.pk).archived
    assert f'<tr id="class-{deep.pk}" class="muted"><td>{DEEP}</td>' in answer.content.decode()

"""The labeling page's shortcuts overlay (the ? key) lists only the keys that act in the project: the taxonomy rows
(Backspace / Esc back up a level, a class opens its children) in a project with subclasses only, so a flat
project has one Esc row per meaning that applies; and it says where a key that was not applied is reported (the note at
the top of the page, not "the bottom right corner")."""

from __future__ import annotations

import pytest

from labeling.models import Role, TaskType
from tests.factories import page_client

pytestmark = pytest.mark.django_db

BACK_UP = "<tr><td><kbd>Backspace</kbd> / <kbd>Esc</kbd></td><td>back up one level of the taxonomy</td></tr>"
START_OVER = "<tr><td><kbd>Esc</kbd></td><td>start the set over after a key was not applied</td></tr>"
CLOSE_HELP = "<tr><td><kbd>?</kbd> / <kbd>Esc</kbd></td><td>show / close this help</td></tr>"


def overlay_rows(project, member_of) -> list[str]:
    """The shortcuts overlay's rows, as the labeling page writes them for an annotator of `project`."""
    response = page_client(member_of(project, Role.ANNOTATOR)).get(f"/p/{project.slug}/label/")
    assert response.status_code == 200
    html = response.content.decode()
    block = html[html.index('id="shortcuts-overlay"') :]
    block = block[: block.index("</table>")]
    return ["<tr>" + row.split("</tr>")[0].strip() + "</tr>" for row in block.split("<tr>")[1:]]


def esc_rows(rows: list[str]) -> list[str]:
    return [row for row in rows if "<kbd>Esc</kbd>" in row]


@pytest.fixture
def project_with(project_factory, label_class_factory, item_factory):
    """project_with(task_type, hierarchical) -> a project with classes a and b (b under a when hierarchical) and an
    image to label."""

    def make(task_type: str, hierarchical: bool):
        project = project_factory(task_type=task_type)
        parent = label_class_factory(project=project, name="animal", hotkey="1")
        label_class_factory(project=project, name="cat", hotkey="2", parent=parent if hierarchical else None)
        item_factory(project=project)
        return project

    return make


@pytest.mark.parametrize(
    ("task_type", "expected"),
    [(TaskType.SINGLE, [CLOSE_HELP]), (TaskType.MULTI, [START_OVER, CLOSE_HELP])],
)
def test_a_flat_project_lists_no_taxonomy_and_one_esc_row_per_meaning(project_with, member_of, task_type, expected):
    # Given a project whose classes have no subclasses
    project = project_with(task_type, hierarchical=False)

    # When the annotator opens the labeling page's shortcuts
    rows = overlay_rows(project, member_of)

    # Then nothing is said of a taxonomy, and Esc appears once per meaning it has in this project
    text = "\n".join(rows)
    assert "taxonomy" not in text
    assert "children" not in text
    assert "<kbd>Backspace</kbd>" not in text
    assert esc_rows(rows) == expected


@pytest.mark.parametrize(
    ("task_type", "expected"),
    [(TaskType.SINGLE, [BACK_UP, CLOSE_HELP]), (TaskType.MULTI, [BACK_UP, START_OVER, CLOSE_HELP])],
)
def test_a_project_with_subclasses_lists_the_taxonomy_keys(project_with, member_of, task_type, expected):
    # Given a project with a class under another
    project = project_with(task_type, hierarchical=True)

    # When the annotator opens the labeling page's shortcuts
    rows = overlay_rows(project, member_of)

    # Then backing up a level is listed, and a class key says it opens a class's children
    assert esc_rows(rows) == expected
    assert "opens its children" in rows[0]


def test_the_shortcuts_say_the_note_of_a_key_not_applied_is_at_the_top(project_with, member_of):
    rows = overlay_rows(project_with(TaskType.SINGLE, hierarchical=False), member_of)

    text = "\n".join(rows)
    assert "(a note at the top of the page says so)" in text
    assert "bottom right" not in text

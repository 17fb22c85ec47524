"""The labeling page's shortcuts overlay (the ? key) lists the keys of the project's kind: Esc starting a multi-label
set over after a key was not applied is listed in multi-label projects only."""

from __future__ import annotations

import pytest

from labeling.models import Role, TaskType
from tests.factories import page_client

pytestmark = pytest.mark.django_db

START_OVER = "<tr><td><kbd>Esc</kbd></td><td>start the set over after a key was not applied</td></tr>"


def overlay(html: str) -> str:
    """The shortcuts overlay's table, as the page writes it."""
    block = html[html.index('id="shortcuts-overlay"') :]
    return block[: block.index("</table>")]


@pytest.mark.parametrize(("task_type", "listed"), [(TaskType.MULTI, True), (TaskType.SINGLE, False)])
def test_the_shortcuts_list_esc_to_start_a_multi_label_set_over(
    project_factory, item_factory, member_of, task_type, listed
):
    # Given a project of this kind with an image to label
    project = project_factory(task_type=task_type)
    item_factory(project=project)
    client = page_client(member_of(project, Role.ANNOTATOR))

    # When the annotator opens the labeling page
    response = client.get(f"/p/{project.slug}/label/")

    # Then the shortcuts overlay lists Esc for starting the set over only in a multi-label project
    assert response.status_code == 200
    rows = overlay(response.content.decode())
    assert "<kbd>?</kbd> / <kbd>Esc</kbd>" in rows
    assert (START_OVER in rows) is listed

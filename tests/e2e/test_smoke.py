"""The login page works in a real browser and leads to the project list."""

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_user_logs_in_and_sees_their_project(page, login, project_factory, member_of, screenshot):
    project = project_factory(name="Street signs")
    member_of(project, "manager", "maria")
    login("maria")
    assert page.locator("text=Street signs").is_visible()
    page.click("text=Street signs")
    assert "/p/" in page.url
    screenshot("project-overview")

"""Settings page, "Invite or change role": an unknown username is refused once, saying who creates accounts
(h50 P1)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from labeling.models import Membership, Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def _invite(client, project, username: str):
    return client.post(
        reverse("labeling:project_settings", args=[project.slug]),
        {"action": "member", "username": username, "role": Role.ANNOTATOR},
    )


def test_an_unknown_username_is_refused_once_with_where_accounts_come_from(project_factory, member_of):
    project = project_factory()
    manager = member_of(project, Role.MANAGER, "manager")

    response = _invite(page_client(manager), project, "annotator2")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("No user named “annotator2”") == 1
    assert html.count("No user named") == 1
    assert "/admin/auth/user/add/" in html
    assert "manage.py createsuperuser" in html
    assert not Membership.objects.filter(project=project, user__username="annotator2").exists()
    assert "Create the account in the admin" not in html  # a link only for those who may open the admin


def test_a_staff_manager_gets_a_link_to_create_the_account_and_then_the_invite_works(project_factory, member_of):
    project = project_factory()
    manager = member_of(project, Role.MANAGER, "manager")
    manager.is_staff = True
    manager.save(update_fields=["is_staff"])
    client = page_client(manager)

    html = _invite(client, project, "annotator2").content.decode()
    assert f'<a href="{reverse("admin:auth_user_add")}">Create the account in the admin</a>' in html

    get_user_model().objects.create_user("annotator2", password="x-long-enough-password")
    response = _invite(client, project, "annotator2")
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user__username="annotator2").role == Role.ANNOTATOR

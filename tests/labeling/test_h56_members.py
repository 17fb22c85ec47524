"""Settings page, Members: a project keeps a manager (tester h56 P7), and Remove asks first and says who went and
that their labels stay (h56 P8)."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from labeling.models import Membership, Role
from labeling.services.annotations import annotation_create
from labeling.services.projects import membership_remove
from tests.factories import api_client, page_client

pytestmark = pytest.mark.django_db


def _set_role(client, project, username: str, role: str, follow: bool = True):
    return client.post(
        reverse("labeling:project_settings", args=[project.slug]),
        {"action": "member", "username": username, "role": role},
        follow=follow,
    )


def _role(project, user) -> str:
    return Membership.objects.get(project=project, user=user).role


def test_the_only_manager_cannot_demote_themselves_and_nothing_changes(project_factory, member_of):
    project = project_factory(slug="shapes-qa")
    manager = member_of(project, Role.MANAGER, "manager")
    client = page_client(manager)

    for role in (Role.ANNOTATOR, Role.REVIEWER, Role.ML_ENGINEER):
        response = _set_role(client, project, "manager", role, follow=False)
        html = response.content.decode()
        assert response.status_code == 200
        assert (
            "manager is the project&#x27;s only manager and cannot be changed to another role: make another member a "
            "manager first. Nothing was changed." in html
        )
        assert "Member saved." not in html
        assert _role(project, manager) == Role.MANAGER
    # Still the manager: the settings page and the API say so
    assert page_client(manager).get(reverse("labeling:project_settings", args=[project.slug])).status_code == 200
    assert api_client(manager).get("/api/projects/shapes-qa/").json()["role"] == Role.MANAGER


def test_a_manager_may_step_down_while_another_manager_remains_and_lands_on_the_overview(project_factory, member_of):
    project = project_factory()
    manager = member_of(project, Role.MANAGER, "manager")
    other = member_of(project, Role.MANAGER, "boss2")

    response = _set_role(page_client(manager), project, "manager", Role.REVIEWER)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("labeling:project_detail", args=[project.slug])
    assert "Member saved: your role in this project is now Reviewer." in html
    assert "Not allowed" not in html
    assert _role(project, manager) == Role.REVIEWER
    # boss2, now the only manager, cannot step down in turn
    response = _set_role(page_client(other), project, "boss2", Role.ANNOTATOR, follow=False)
    assert "boss2 is the project&#x27;s only manager" in response.content.decode()
    assert _role(project, other) == Role.MANAGER


def test_a_manager_may_demote_another_manager_but_not_the_last(project_factory, member_of):
    project = project_factory()
    manager = member_of(project, Role.MANAGER, "manager")
    other = member_of(project, Role.MANAGER, "boss2")
    client = page_client(manager)

    response = _set_role(client, project, "boss2", Role.ANNOTATOR)
    assert "Member saved." in response.content.decode()
    assert _role(project, other) == Role.ANNOTATOR

    # Inviting someone new as a non-manager is untouched by the rule
    member_of(project_factory(), Role.ANNOTATOR, "newcomer")
    assert "Member saved." in _set_role(client, project, "newcomer", Role.ANNOTATOR).content.decode()


def test_the_last_manager_is_not_removed(project_factory, member_of):
    # No page offers it (a manager's own row has no Remove), but the write itself refuses it
    project = project_factory()
    manager = member_of(project, Role.MANAGER, "manager")
    membership = Membership.objects.get(project=project, user=manager)
    with pytest.raises(ValidationError, match="only manager and cannot be removed"):
        membership_remove(project=project, membership_id=membership.pk)
    assert _role(project, manager) == Role.MANAGER


@pytest.fixture
def team(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="shapes-qa", annotations_per_item=2)
    circle = label_class_factory(project=project, name="circle")
    manager = member_of(project, Role.MANAGER, "manager")
    ann2 = member_of(project, Role.ANNOTATOR, "ann2")
    items = [item_factory(project=project) for _ in range(3)]
    for item in items:
        annotation_create(item=item, user=ann2, class_ids=[circle.pk])
    return {"project": project, "manager": manager, "ann2": ann2, "items": items}


def test_remove_asks_first_then_says_who_went_and_that_their_labels_stay(team):
    project, ann2 = team["project"], team["ann2"]
    client = page_client(team["manager"])
    settings_url = reverse("labeling:project_settings", args=[project.slug])
    membership = Membership.objects.get(project=project, user=ann2)

    # The table's Remove asks first: the page names who goes and what stays, and nothing is removed yet
    page = client.get(settings_url).content.decode()
    assert f'<input type="hidden" name="remove" value="{membership.pk}">' in page
    confirm = client.get(settings_url, {"remove": membership.pk}).content.decode()
    assert "Remove ann2 from the project? They can no longer open it; their 3 labels stay." in confirm
    assert ">Remove ann2</button>" in confirm
    assert f'href="{settings_url}#members">Cancel</a>' in confirm
    assert Membership.objects.filter(pk=membership.pk).exists()

    # Confirmed: the flash says who went and that their labels stay
    response = client.post(reverse("labeling:membership_remove", args=[project.slug, membership.pk]), follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"{settings_url}#members"
    assert "ann2 removed from the project; their 3 labels stay." in html
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert "Remove ann2 from the project?" not in html


def test_no_confirmation_for_oneself_or_an_unknown_member(team):
    project = team["project"]
    client = page_client(team["manager"])
    settings_url = reverse("labeling:project_settings", args=[project.slug])
    own = Membership.objects.get(project=project, user=team["manager"])
    for remove in (own.pk, 999999, "x"):
        html = client.get(settings_url, {"remove": remove}).content.decode()
        assert 'id="confirm-remove"' not in html


def test_a_removed_annotators_held_images_are_served_to_the_others_at_once(project_factory, member_of, item_factory):
    # Reported (h58b P5): after ann3 was removed, the two images ann3 held (on the page and fetched ahead) stayed
    # withheld from everyone for the lease's 10 minutes
    project = project_factory()
    manager = member_of(project, Role.MANAGER, "boss")
    leaver, stayer = member_of(project, Role.ANNOTATOR, "ann3"), member_of(project, Role.ANNOTATOR, "ann2")
    for n in range(2):
        item_factory(project=project, original_name=f"{n}.png")
    held = api_client(leaver).get(f"/api/projects/{project.slug}/next/").json()["item"]["id"]
    other = api_client(stayer).get(f"/api/projects/{project.slug}/next/").json()["item"]["id"]
    assert other != held  # while ann3 holds it, ann2 is served the other image

    # When the manager removes ann3 on the settings page
    membership = Membership.objects.get(project=project, user=leaver)
    page_client(manager).post(reverse("labeling:membership_remove", args=[project.slug, membership.pk]))

    # Then the image ann3 held is free: ann2, done with theirs, is served it next
    assert not Membership.objects.filter(project=project, user=leaver).exists()
    assert not project.items.filter(lease_user=leaver).exists()
    cat = project.classes.create(name="cat", hotkey="1")
    labeled = api_client(stayer).post(
        f"/api/projects/{project.slug}/annotations/", {"item_id": other, "class_ids": [cat.pk]}, format="json"
    )
    assert labeled.status_code == 201, labeled.content
    served = api_client(stayer).get(f"/api/projects/{project.slug}/next/").json()["item"]
    assert served is not None, "nothing served: the removed member's image is still held"
    assert served["id"] == held

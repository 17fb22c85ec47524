"""In the browser: a manager's Remove on a member asks first, Cancel keeps them, and the confirmed removal says who
went and that their labels stay (tester h56 P8)."""

from __future__ import annotations

import pytest

from labeling.models import Membership, Role
from labeling.services.annotations import annotation_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_remove_asks_first_and_then_says_who_went_and_that_their_labels_stay(
    page, login, project_factory, label_class_factory, item_factory, member_of
):
    project = project_factory(name="Shapes QA", slug="shapes-qa", annotations_per_item=2)
    circle = label_class_factory(project=project, name="circle")
    member_of(project, Role.MANAGER, "manager")
    ann2 = member_of(project, Role.ANNOTATOR, "ann2")
    for _ in range(2):
        annotation_create(item=item_factory(project=project), user=ann2, class_ids=[circle.pk])
    row = page.locator("tbody tr", has=page.locator("td:text-is('ann2')"))

    login("manager")
    page.goto("/p/shapes-qa/settings/")
    row.locator("button:text-is('Remove')").click()

    # The page asks first; ann2 is still a member
    confirm = page.locator("#confirm-remove")
    confirm.wait_for()
    assert confirm.locator("p").inner_text() == (
        "Remove ann2 from the project? They can no longer open it; their 2 labels stay."
    )
    assert Membership.objects.filter(project=project, user=ann2).exists()

    # Cancel keeps them
    confirm.locator("a:text-is('Cancel')").click()
    page.wait_for_selector("#confirm-remove", state="detached")
    assert row.count() == 1
    assert Membership.objects.filter(project=project, user=ann2).exists()

    # Confirmed: gone, and the flash says so
    row.locator("button:text-is('Remove')").click()
    page.locator("#confirm-remove button:text-is('Remove ann2')").click()
    page.wait_for_selector(".msg-success")
    assert page.locator(".msg-success").inner_text() == "ann2 removed from the project; their 2 labels stay."
    assert row.count() == 0
    assert not Membership.objects.filter(project=project, user=ann2).exists()

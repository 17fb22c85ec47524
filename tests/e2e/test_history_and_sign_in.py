"""Back to the labeling page, grid or review after working on them shows what is true now, not the HTML the page was
first rendered with: a key typed after Back labels the image on screen, one nobody has labeled yet. A key typed after
the session has ended (signed out in another tab) leads to the sign-in page as a whole page and back to labeling; one
typed after signing in again in another tab (a new security token) reloads the page and says it was not saved; one
typed after a manager removed the annotator from the project shows, as a whole page, that it is not theirs anymore.
A key typed in a second tab at an image the first tab labeled says so and labels nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling.models import Annotation, Membership, Role
from labeling.selectors.media import item_media_url
from tests.e2e.conftest import CARD, labels_by_ann, next_card

pytestmark = [pytest.mark.django_db(transaction=True)]


def sign_out_in_another_tab(page, *, and_in_again: bool) -> None:
    other = page.context.new_page()
    other.goto("/p/pets/")
    other.get_by_role("button", name="Log out").click()
    other.wait_for_url("**/accounts/login/**")
    if and_in_again:
        other.fill("input[name=username]", "ann")
        other.fill("input[name=password]", "pw")
        other.click("button[type=submit]")
        other.wait_for_url(lambda url: "/accounts/login/" not in url)
    other.close()


def the_same_image_is_back_and_a_key_labels_it(page, first: str) -> None:
    shown = page.wait_for_function(CARD).json_value()
    assert shown == first  # still leased to them, and not labeled
    assert not Annotation.objects.exists()
    page.keyboard.press("1")
    next_card(page, shown)
    assert labels_by_ann() == {int(shown): "cat"}


@pytest.mark.e2e
def test_back_to_the_labeling_page_shows_the_next_image_and_a_key_labels_it(page, pets_labeling):
    # Given an annotator on the labeling page, who labels the first image with a key, then opens the overview
    _, _, first = pets_labeling
    page.keyboard.press("1")
    next_card(page, first)
    page.goto("/p/pets/")

    # When they press Back and type a key at the card they see
    page.go_back()
    shown = page.wait_for_function(CARD).json_value()
    page.keyboard.press("2")
    next_card(page, shown)

    # Then the card was not the image already labeled, and the key labeled the image that was on screen
    assert shown != first
    assert labels_by_ann() == {int(first): "cat", int(shown): "dog"}
    assert "needs no more annotations" not in page.locator("#item-card").inner_text()


@pytest.mark.e2e
def test_a_key_typed_in_a_second_tab_at_an_image_labeled_in_the_first_says_so_and_changes_nothing(page, pets_labeling):
    # Given an annotator with the labeling page open in two tabs, both showing the same image
    _, _, first = pets_labeling
    second = page.context.new_page()
    second.goto("/p/pets/label/")
    assert second.wait_for_function(CARD).json_value() == first

    # When they label it in the first tab, then type another label at it in the second
    page.keyboard.press("1")
    now = next_card(page, first)
    second.bring_to_front()
    second.keyboard.press("2")

    # Then the second tab says the image was labeled already, and with which class, shows the image the first tab
    # shows, and the label from the first tab stands
    assert next_card(second, first) == now
    assert (
        f"You have already labeled image #{first}: your label “cat” is saved."
        in second.locator("#item-card").inner_text()
    )
    assert labels_by_ann() == {int(first): "cat"}
    second.close()


@pytest.mark.e2e
def test_a_key_typed_after_signing_out_elsewhere_leads_to_sign_in_and_back_to_the_same_image(page, pets_labeling):
    # Given an annotator on the labeling page, who signs out in another tab
    _, _, first = pets_labeling
    sign_out_in_another_tab(page, and_in_again=False)

    # When they type a label key on the first tab
    page.keyboard.press("1")

    # Then the whole page is the sign-in page (not a sign-in form inside the card), nothing was labeled, and signing
    # in leads back to the labeling page, where the key labels the image
    page.wait_for_url("**/accounts/login/?next=/p/pets/label/")
    assert page.locator("#item-card").count() == 0
    assert page.locator("header.topbar").count() == 1
    assert not Annotation.objects.exists()
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/p/pets/label/")
    the_same_image_is_back_and_a_key_labels_it(page, first)


@pytest.mark.e2e
def test_a_key_typed_after_signing_in_again_elsewhere_reloads_the_page_says_so_and_the_next_key_labels(
    page, pets_labeling
):
    # Given an annotator on the labeling page, who signs out and in again in another tab (a new security token)
    _, _, first = pets_labeling
    sign_out_in_another_tab(page, and_in_again=True)

    # When they type a label key on the first tab
    with page.expect_navigation():
        page.keyboard.press("1")

    # Then the page reloads with the same image and says the key was not saved; the next key labels the image
    assert "Not saved: this page was out of date" in page.locator(".messages").inner_text()
    the_same_image_is_back_and_a_key_labels_it(page, first)


@pytest.mark.e2e
def test_a_key_typed_after_being_removed_from_the_project_shows_the_not_found_page_and_labels_nothing(
    page, pets_labeling
):
    _, ann, _ = pets_labeling
    Membership.objects.filter(user=ann).delete()  # the manager removes them meanwhile

    with page.expect_navigation():
        page.keyboard.press("1")

    assert page.locator("h1").inner_text() == "Page not found"
    assert "belongs to a project you are not a member of" in page.locator("main").inner_text()
    assert not Annotation.objects.exists()


def test_a_plain_form_with_an_out_of_date_token_gets_a_page_that_says_what_to_do(project_factory, member_of):
    project = project_factory(name="Pets", slug="pets")
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_of(project, Role.MANAGER, "maria"))
    answer = client.post("/p/pets/review/refresh/", {"csrfmiddlewaretoken": "x" * 64})
    assert answer.status_code == 403
    assert "Not saved: the page was out of date" in answer.content.decode()


def test_an_htmx_request_without_a_session_is_sent_to_sign_in_as_a_page_and_a_plain_one_is_redirected(project_factory):
    project_factory(name="Pets", slug="pets")
    client = Client()
    plain = client.get("/p/pets/label/")
    assert plain.status_code == 302
    assert plain["Location"] == "/accounts/login/?next=/p/pets/label/"
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://testserver/p/pets/label/?x=1"}
    answer = client.post("/p/pets/label/1/", {"class_ids": "1"}, headers=htmx)
    assert answer.status_code == 204
    assert answer["HX-Redirect"] == "/accounts/login/?next=/p/pets/label/%3Fx%3D1"
    elsewhere = client.get("/p/pets/label/", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.test/x"})
    assert elsewhere["HX-Redirect"] == "/accounts/login/?next=/"


def test_signed_in_pages_are_not_stored_and_images_keep_their_own_caching(
    project_factory, label_class_factory, item_factory, member_of
):
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    item = item_factory(project=project)
    client = Client()
    client.force_login(member_of(project, Role.MANAGER, "maria"))
    for url in ("/p/pets/label/", "/p/pets/grid/", "/p/pets/review/", "/p/pets/", "/p/pets/model/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
    media = client.get(item_media_url(slug="pets", item_id=item.pk, sha256=item.sha256, kind="original"))
    assert media.status_code == 200
    assert media["Cache-Control"] == "private, max-age=86400, immutable"

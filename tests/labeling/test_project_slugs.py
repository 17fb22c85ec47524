"""A project's slug says its name: Cyrillic and Greek names are spelled in Latin, and a name with no letters an
address can use (Chinese, Japanese, Arabic...) brings the new-project form back with its numbered slug, to keep or
to replace, before the project is made."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Project
from labeling.services.projects import project_create, project_slug
from tests.factories import page_client
from tests.labeling.test_project_permissions import NEW_PROJECT, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory())


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Кошки и собаки", "koshki-i-sobaki"),
        ("Ёжик и йогурт", "yozhik-i-yogurt"),
        ("Їжачок Євген", "yizhachok-yevgen"),
        ("Γάτες", "gates"),
        ("Ψυχή και Χάος", "psychi-kai-chaos"),
        ("Été des oiseaux", "ete-des-oiseaux"),
        ("猫の写真", ""),
        ("صور القطط", ""),
    ],
)
def test_a_name_in_cyrillic_or_greek_gives_a_slug_spelled_in_latin(name, slug):
    assert project_slug(name) == slug


def test_projects_named_in_cyrillic_get_their_own_numbered_slug(user_factory):
    owner = user_factory()

    first = project_create(name="Кошки и собаки", created_by=owner)
    second = project_create(name="КОШКИ И СОБАКИ", created_by=owner)

    assert (first.slug, second.slug) == ("koshki-i-sobaki", "koshki-i-sobaki-2")


def test_the_page_creates_a_cyrillic_named_project_at_its_latin_address(creator):
    client = page_client(creator)

    response = client.post(reverse("labeling:project_create"), {**NEW_PROJECT, "name": "Кошки и собаки"}, follow=True)

    assert response.redirect_chain[-1][0] == "/p/koshki-i-sobaki/settings/"
    assert Project.objects.get().name == "Кошки и собаки"


def test_a_cjk_name_comes_back_with_its_numbered_slug_to_keep_or_replace(creator, project_factory):
    project_factory(slug="project")
    client = page_client(creator)
    url = reverse("labeling:project_create")

    # Given a name with no letters an address can use, the form comes back once, nothing made yet
    response = client.post(url, {**NEW_PROJECT, "name": "猫の写真"})

    assert response.status_code == 200
    assert not Project.objects.filter(name="猫の写真").exists()
    page = response.content.decode()
    assert "would get the slug project-2: its address /p/project-2/" in page
    assert "type your own in the Slug field below, or press Create project to keep project-2" in page
    assert 'name="slug" value="project-2"' in page

    # When the user keeps it, the project is made with it
    keep = {**NEW_PROJECT, "name": "猫の写真", "slug": "project-2", "offered": "project-2"}
    kept = client.post(url, keep, follow=True)
    assert kept.redirect_chain[-1][0] == "/p/project-2/settings/"

    # When another types their own slug, the project is made at that address
    chosen = client.post(url, {**NEW_PROJECT, "name": "猫の写真", "slug": "cat-photos"}, follow=True)
    assert chosen.redirect_chain[-1][0] == "/p/cat-photos/settings/"
    assert sorted(Project.objects.filter(name="猫の写真").values_list("slug", flat=True)) == ["cat-photos", "project-2"]


def test_a_typed_slug_that_is_taken_or_empty_is_refused_and_nothing_is_made(creator, project_factory):
    project_factory(slug="cat-photos")
    client = page_client(creator)
    url = reverse("labeling:project_create")

    taken = client.post(url, {**NEW_PROJECT, "name": "猫の写真", "slug": "Cat-Photos"})
    nothing = client.post(url, {**NEW_PROJECT, "name": "猫の写真", "slug": "写真"})

    assert "A project with the slug 'cat-photos' exists: choose another" in error_of(taken)
    assert "Enter a slug of letters, digits, hyphens or underscores." in error_of(nothing)
    assert not Project.objects.filter(name="猫の写真").exists()


def test_the_new_project_page_offers_a_slug_field_under_the_name(creator):
    page = page_client(creator).get(reverse("labeling:project_create")).content.decode()

    assert page.index('name="name"') < page.index('name="slug"') < page.index('name="task_type"')
    assert "web address (/p/slug/) and in labelloop commands" in page


def test_a_name_whose_slug_holds_no_letter_is_offered_its_slug_first(creator):
    # Given a name whose only address characters are digits
    response = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "name": "写真 2024"})

    # Then the form comes back with the slug it would get, nothing made yet
    assert response.status_code == 200
    assert 'name="slug" value="2024"' in response.content.decode()
    assert not Project.objects.exists()


def test_a_name_changed_to_latin_after_the_offer_gets_its_own_slug(creator):
    # Given the form came back offering project, and the user then typed a Latin name, leaving the offer in place
    client = page_client(creator)
    url = reverse("labeling:project_create")
    client.post(url, {**NEW_PROJECT, "name": "猫の写真"})
    made = client.post(url, {**NEW_PROJECT, "name": "Cat photos", "slug": "project", "offered": "project"}, follow=True)

    # Then the project's slug is made from the new name
    assert made.redirect_chain[-1][0] == "/p/cat-photos/settings/"


def test_a_typed_slug_that_is_not_one_is_refused_with_one_that_would_do(creator):
    response = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "slug": "Bad Slug!"})

    assert "with no spaces: 'bad-slug' would do." in error_of(response)
    assert not Project.objects.exists()

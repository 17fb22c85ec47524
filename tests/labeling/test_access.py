"""Membership is per project: outsiders get 404, weak roles 403, anonymous users the login page."""

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Job, LabelClass, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_projects(project_factory, item_factory, member_of):
    a, b = project_factory(slug="alpha"), project_factory(slug="beta")
    item_b = item_factory(project=b)
    job_b = Job.objects.create(project=b, kind="import")
    user_a = member_of(a, Role.MANAGER, "anna")
    return a, b, item_b, job_b, user_a


def test_member_of_a_gets_404_for_everything_of_b(two_projects):
    a, b, item_b, job_b, user_a = two_projects
    client = Client()
    client.force_login(user_a)
    urls = [
        reverse("labeling:project_detail", args=[b.slug]),
        reverse("labeling:project_settings", args=[b.slug]),
        reverse("labeling:item_media", args=[b.slug, item_b.pk, "original"]),
        reverse("labeling:item_media", args=[b.slug, item_b.pk, "thumb"]),
        reverse("labeling:job_status", args=[b.slug, job_b.pk]),
        # b's item and job through a's URL: still not found.
        reverse("labeling:item_media", args=[a.slug, item_b.pk, "original"]),
        reverse("labeling:job_status", args=[a.slug, job_b.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.get(reverse("labeling:project_detail", args=[a.slug])).status_code == 200


def test_anonymous_is_redirected_to_login(two_projects):
    a, *_ = two_projects
    for url in [reverse("labeling:project_list"), reverse("labeling:project_detail", args=[a.slug])]:
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_annotator_cannot_open_manager_pages(project, member_of):
    annotator = member_of(project, Role.ANNOTATOR)
    client = Client()
    client.force_login(annotator)
    assert client.get(reverse("labeling:project_settings", args=[project.slug])).status_code == 403
    assert client.get(reverse("labeling:project_detail", args=[project.slug])).status_code == 200


def test_media_is_served_only_to_members_and_never_from_a_public_url(project, item, member_of, settings):
    item.project = project
    item.save()
    client = Client()
    client.force_login(member_of(project))
    response = client.get(reverse("labeling:item_media", args=[project.slug, item.pk, "original"]))
    assert response.status_code == 200
    assert response.getvalue().startswith(b"\x89PNG")  # small files come whole, large ones stream
    assert response["Cache-Control"].startswith("private")
    assert client.get("/media/" + item.file.name).status_code == 404
    assert client.get(settings.MEDIA_URL + item.file.name).status_code == 404


def test_media_can_be_handed_to_nginx(project, item, member_of, settings):
    settings.LABELLOOP_MEDIA_ACCEL_PREFIX = "/protected/"
    item.project = project
    item.save()
    client = Client()
    client.force_login(member_of(project))
    response = client.get(reverse("labeling:item_media", args=[project.slug, item.pk, "thumb"]))
    assert response["X-Accel-Redirect"] == "/protected/" + item.thumbnail.name


def test_csrf_is_enforced_on_forms(project, member_of):
    manager = member_of(project, Role.MANAGER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    url = reverse("labeling:project_settings", args=[project.slug])
    response = client.post(url, {"action": "class", "name": "cat"})
    assert response.status_code == 403
    assert not LabelClass.objects.filter(project=project).exists()


def test_manager_creates_project_with_hierarchical_classes_and_invites(
    django_user_model, member_of, allow_project_creation
):
    creator = allow_project_creation(django_user_model.objects.create_user("maria", password="pw"))
    django_user_model.objects.create_user("ann", password="pw")
    client = Client()
    client.force_login(creator)
    response = client.post(
        reverse("labeling:project_create"),
        {"name": "Birds", "task_type": "multi", "instructions": "", "annotations_per_item": 1,
         "classes": "animal/bird\nanimal/cat\nvehicle"},
    )  # fmt: skip
    project = Project.objects.get(name="Birds")
    assert response.status_code == 302
    assert project.is_multi_label
    paths = sorted(c.path for c in project.classes.all())
    assert paths == ["animal", "animal / bird", "animal / cat", "vehicle"]
    assert len({c.hotkey for c in project.classes.all()}) == 4
    client.post(
        reverse("labeling:project_settings", args=[project.slug]),
        {"action": "member", "username": "ann", "role": "annotator"},
    )
    assert Membership.objects.get(project=project, user__username="ann").role == Role.ANNOTATOR
    response = client.post(
        reverse("labeling:project_settings", args=[project.slug]),
        {"action": "member", "username": "nobody", "role": "annotator"},
    )
    assert b"No user named" in response.content


def test_login_page_renders_and_logs_in(django_user_model):
    django_user_model.objects.create_user("lena", password="secret-pw")
    client = Client()
    assert b"Log in to Labelloop" in client.get(reverse("login")).content
    response = client.post(reverse("login"), {"username": "lena", "password": "secret-pw"})
    assert response.status_code == 302
    assert client.get(reverse("labeling:project_list")).status_code == 200

"""Who may create projects and read server folders, and which weights a manager may name (issue 15, "High").

Each test performs the attack of the security review through the page and, where one exists, the REST API:
a signed-in user makes themselves a manager, imports from the server's folders, runs batch inference on
them, and probes for files through the backbone weights setting.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from labeling.admin import ProjectAdminForm
from labeling.forms import ProjectSettingsForm
from labeling.models import Item, Job, Membership, Project, Role
from labeling.permissions import PROJECT_CREATE_REFUSED, PROJECT_CREATORS
from tests.factories import api_client, page_client, png_bytes
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

NEW_PROJECT = {"name": "Mine", "task_type": "single", "instructions": "", "annotations_per_item": 1, "classes": "a"}


def error_of(response) -> str:
    """The page's error messages (form errors and error flash messages, each once), without the rest of the page."""
    html = response.content.decode()
    found = re.findall(r'<li class="msg-error">(.*?)</li>|<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    # training/exports.html shows a form's non-field errors twice ({{ form.non_field_errors }} and form.as_p).
    texts = dict.fromkeys(unescape(re.sub(r"<[^>]+>", " ", "".join(parts))).strip() for parts in found)
    return " ".join(texts)


@pytest.fixture
def server(tmp_path, settings):
    """LABELLOOP_IMPORT_ROOTS = [root] with two image folders in it (granted, other), and a folder outside it."""
    root = tmp_path / "server"
    for name in ("granted", "other"):
        (root / name).mkdir(parents=True)
        for n in range(3):
            (root / name / f"{name}{n}.png").write_bytes(png_bytes(n))
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "payroll.png").write_bytes(png_bytes(9))
    settings.LABELLOOP_IMPORT_ROOTS = [str(root)]
    return root


@pytest.fixture
def self_made_manager(user_factory, allow_project_creation):
    """A non-staff project creator who made a project through the page and so manages it."""
    user = allow_project_creation(user_factory())
    response = page_client(user).post(reverse("labeling:project_create"), NEW_PROJECT)
    assert response.status_code == 302
    return user, Project.objects.get(name="Mine")


# --------------------------------------------------------------------------------------------
# Creating projects
# --------------------------------------------------------------------------------------------


def test_a_signed_in_user_without_the_permission_cannot_create_a_project(user_factory):
    # Given an ordinary signed-in user (not staff, not a project creator)
    user = user_factory()
    client = page_client(user)

    # When they open the project list, the new-project page, and post the form
    listing = client.get(reverse("labeling:project_list")).content.decode()
    page = client.get(reverse("labeling:project_create"))
    posted = client.post(reverse("labeling:project_create"), NEW_PROJECT)
    # ... and try the REST API
    api = api_client(user).post("/api/projects/", {"name": "Mine"}, format="json")

    # Then there is no "New project" button, both requests get 403 with the way to ask, and nothing is created
    assert "New project" not in listing
    assert "an administrator can let you create projects" in listing
    assert page.status_code == 403
    assert posted.status_code == 403
    assert PROJECT_CREATE_REFUSED in page.content.decode().replace("&quot;", '"')
    assert 'name="name"' not in page.content.decode()
    assert api.status_code in (403, 405)
    assert not Project.objects.exists()
    assert not Membership.objects.exists()


@pytest.mark.parametrize("how", ["group", "staff"])
def test_project_creators_and_staff_create_projects_and_manage_them(user_factory, allow_project_creation, how):
    user = user_factory(is_staff=how == "staff")
    if how == "group":
        allow_project_creation(user)
    client = page_client(user)

    assert "New project" in client.get(reverse("labeling:project_list")).content.decode()
    response = client.post(reverse("labeling:project_create"), NEW_PROJECT)

    assert response.status_code == 302
    project = Project.objects.get(name="Mine")
    assert Membership.objects.get(project=project, user=user).role == Role.MANAGER


def test_the_project_creators_command_adds_lists_and_removes(user_factory, capsys):
    ann, bob = user_factory(username="ann"), user_factory(username="bob")
    user_factory(username="root", is_staff=True)

    call_command("project_creators", "add", "ann", "bob")
    call_command("project_creators", "list")
    listed = capsys.readouterr().out
    call_command("project_creators", "remove", "bob")
    with pytest.raises(CommandError, match="No such user: nobody"):
        call_command("project_creators", "add", "ann", "nobody")

    assert "ann\nbob\nroot (staff)" in listed
    assert list(Group.objects.get(name=PROJECT_CREATORS).user_set.all()) == [ann]
    assert page_client(ann).get(reverse("labeling:project_create")).status_code == 200
    assert page_client(bob).get(reverse("labeling:project_create")).status_code == 403


def test_demo_setup_lets_the_demo_manager_create_projects(tmp_path):
    call_command("demo_setup", "--dir", str(tmp_path), "--limit", "10")

    manager = Group.objects.get(name=PROJECT_CREATORS).user_set.get()
    assert manager.username == "manager"
    assert page_client(manager).get(reverse("labeling:project_create")).status_code == 200


def test_the_migration_made_the_project_creators_group():
    assert Group.objects.filter(name=PROJECT_CREATORS).exists()


# --------------------------------------------------------------------------------------------
# Server folders: import
# --------------------------------------------------------------------------------------------


def test_a_self_made_manager_cannot_import_server_folders(self_made_manager, server, tmp_path):
    # Given a non-staff user who created a project and so manages it, on a server with LABELLOOP_IMPORT_ROOTS set
    user, project = self_made_manager
    client = page_client(user)
    url = reverse("labeling:import", args=[project.slug])

    # When they open the import page
    page = client.get(url).content.decode()
    # Then there is no server-folder option at all
    assert 'name="path"' not in page
    assert str(server) not in page

    # When they post server folders anyway: the system's, one inside the roots, a missing one, one outside
    paths = ("/etc", str(server / "other"), str(server / "missing"), str(tmp_path / "secret"))
    answers = [client.post(url, {"action": "folder", "path": path}) for path in paths]

    # Then each is refused with the same message, and nothing is queued or imported
    assert {a.status_code for a in answers} == {400}
    assert {error_of(a) for a in answers} == {"Server folders are not available in this project."}
    assert not Job.objects.exists()
    assert not Item.objects.exists()


def test_a_manager_imports_only_folders_staff_granted_and_the_refusal_does_not_tell_what_exists(
    self_made_manager, server, tmp_path, grant_server_folders, django_capture_on_commit_callbacks
):
    # Given staff granted the self-made manager's project one folder; a link inside it points outside
    user, project = self_made_manager
    grant_server_folders(project, server / "granted")
    (server / "granted" / "escape").symlink_to(tmp_path / "secret", target_is_directory=True)
    client = page_client(user)
    url = reverse("labeling:import", args=[project.slug])

    # When the manager opens the page, then tries a not-granted folder that exists, a missing one, a file,
    # /etc, a folder outside the roots, the link, a climb out of the granted folder, and a NUL byte
    page = client.get(url).content.decode()
    tries = [str(server / "other"), str(server / "granted" / "missing"), str(server / "granted" / "granted0.png"),
             "/etc", str(tmp_path / "secret"), str(server / "granted" / "escape"),
             str(server / "granted" / ".." / "other"), str(server / "granted") + "\x00x"]  # fmt: skip
    answers = [client.post(url, {"action": "folder", "path": path}) for path in tries]

    # Then the page offers only the granted folder; every try gets one and the same message; nothing is queued
    assert f"inside {server / 'granted'}" in page
    assert {a.status_code for a in answers} == {400}
    assert {error_of(a) for a in answers} == {
        f"No such folder among the server folders open to this project: {server / 'granted'}."
    }
    assert not Job.objects.exists()

    # And the granted folder itself imports
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "folder", "path": str(server / "granted")})
    assert sorted(Item.objects.filter(project=project).values_list("original_name", flat=True)) == [
        "granted0.png",
        "granted1.png",
        "granted2.png",
    ]


def test_staff_may_import_any_folder_inside_the_roots_and_nothing_outside(
    project, member_of, server, tmp_path, django_capture_on_commit_callbacks
):
    staff = member_of(project, Role.MANAGER)
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    client = page_client(staff)
    url = reverse("labeling:import", args=[project.slug])

    outside = client.post(url, {"action": "folder", "path": str(tmp_path / "secret")})
    with django_capture_on_commit_callbacks(execute=True):
        inside = client.post(url, {"action": "folder", "path": str(server / "other")})

    assert outside.status_code == 400
    assert error_of(outside) == f"No such folder among the server folders open to this project: {server}."
    assert inside.status_code == 302
    assert Item.objects.filter(project=project).count() == 3


def test_the_admin_grants_only_folders_inside_the_import_roots(project, server, tmp_path, user_factory):
    # Given a superuser in the admin's change page of a project
    admin = Client()
    admin.force_login(user_factory(is_staff=True, is_superuser=True))
    url = reverse("admin:labeling_project_change", args=[project.pk])

    def save(folders: str):
        data = {k: v for k, v in ProjectAdminForm(instance=project).initial.items() if v is not None and v is not False}
        data.update({"granted_import_roots": folders, "_save": "Save"})
        data.pop("created_by", None)
        return admin.post(url, data)

    # When they grant a folder outside LABELLOOP_IMPORT_ROOTS, then one inside it (through a link)
    refused = save(f"{server / 'granted'}\n{tmp_path / 'secret'}")
    (tmp_path / "link").symlink_to(server / "other", target_is_directory=True)
    saved = save(f"{server / 'granted'}\n\n{tmp_path / 'link'}\n")

    # Then the first is refused and changes nothing; the second is stored resolved
    assert refused.status_code == 200
    assert "Not an absolute folder inside LABELLOOP_IMPORT_ROOTS" in refused.content.decode()
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    project.refresh_from_db()
    assert project.granted_import_roots == [str(server / "granted"), str(server / "other")]


# --------------------------------------------------------------------------------------------
# Server folders: batch inference
# --------------------------------------------------------------------------------------------


@pytest.fixture
def with_model(self_made_manager):
    user, project = self_made_manager
    run = TrainingRun.objects.create(project=project, status="succeeded")
    ModelVersion.objects.create(project=project, run=run, number=1, artifact_path="x", architecture="a", active=True)
    return user, project


def test_batch_inference_on_a_server_folder_is_refused_through_page_and_api(with_model, server, tmp_path):
    # Given a self-made manager of a project with a model, and no folder granted
    user, project = with_model
    client = page_client(user)
    url = reverse("training:model_exports", args=[project.slug])
    api_url = f"/api/projects/{project.slug}/inference/"

    # When they open the model page and run inference on server folders through the page and the API
    page = client.get(url).content.decode()
    answers = [client.post(url, {"folder": path}) for path in ("/etc", str(server / "other"))]
    api_answers = [api_client(user).post(api_url, {"folder": path}, format="json")
                   for path in ("/etc", str(server / "other"), str(tmp_path / "missing"))]  # fmt: skip

    # Then the page has no folder field, every request is refused with the same message, and no job exists
    assert 'name="folder"' not in page
    assert {a.status_code for a in answers + api_answers} == {400}
    assert {error_of(a) for a in answers} == {"Server folders are not available in this project."}
    assert {str(a.json()) for a in api_answers} == {"{'detail': ['Server folders are not available in this project.']}"}
    assert not Job.objects.exists()


def test_batch_inference_reads_only_granted_folders(with_model, server, tmp_path, grant_server_folders):
    user, project = with_model
    grant_server_folders(project, server / "granted")
    api_url = f"/api/projects/{project.slug}/inference/"
    api = api_client(user)

    page = page_client(user).get(reverse("training:model_exports", args=[project.slug])).content.decode()
    paths = (str(server / "other"), str(server / "granted" / "nope"), str(tmp_path / "secret"))
    refused = [api.post(api_url, {"folder": path}, format="json").json() for path in paths]
    accepted = api.post(api_url, {"folder": str(server / "granted")}, format="json")

    assert 'name="folder"' in page
    assert len({str(answer) for answer in refused}) == 1
    assert "No such folder among the server folders open to this project" in str(refused[0])
    assert accepted.status_code == 202
    assert Job.objects.get().params["folder"] == str(server / "granted")


# --------------------------------------------------------------------------------------------
# Backbone weights
# --------------------------------------------------------------------------------------------


def settings_post(client: Client, project, **changes):
    data = {k: v for k, v in ProjectSettingsForm(instance=project).initial.items() if v is not None and v is not False}
    data.update(changes)
    return client.post(reverse("labeling:project_settings", args=[project.slug]), {**data, "action": "settings"})


def test_the_weights_setting_names_no_server_file_and_does_not_tell_whether_one_exists(self_made_manager, tmp_path):
    # Given a self-made manager and a file that exists on the server
    user, project = self_made_manager
    client = page_client(user)
    existing = tmp_path / "real.pth"
    existing.write_bytes(b"not a checkpoint")

    # When they set the backbone weights to it, to a missing file, and to /etc/passwd
    answers = [settings_post(client, project, backbone_weights=path)
               for path in (str(existing), str(tmp_path / "missing.pth"), "/etc/passwd")]  # fmt: skip
    # ... or try the REST API
    api = api_client(user).patch(f"/api/projects/{project.slug}/", {"backbone_weights": str(existing)}, format="json")

    # Then each is refused with one and the same message, and the project keeps its weights
    assert {a.status_code for a in answers} == {200}
    assert {error_of(a) for a in answers} == {"Choose one of the listed weights; other files cannot be used."}
    assert api.status_code in (403, 405)
    project.refresh_from_db()
    assert project.backbone_weights == "bundled"


def test_a_checkpoint_the_administrator_registered_can_be_chosen(self_made_manager, settings, tmp_path):
    user, project = self_made_manager
    registered = str(tmp_path / "lite0-finetuned.safetensors")
    settings.LABELLOOP_BACKBONE_WEIGHTS = [registered]

    page = page_client(user).get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    response = settings_post(page_client(user), project, backbone_weights=registered)

    assert f'<option value="{registered}"' in page
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.backbone_weights == registered

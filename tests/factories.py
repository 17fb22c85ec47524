"""factory_boy factories, exposed as fixtures in tests/conftest.py, and plain helpers that make rows in bulk."""

from __future__ import annotations

import hashlib
import io
import zipfile

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from labeling.models import Item, LabelClass, Membership, Project, Role


def png_bytes(seed: int, size: tuple[int, int] = (32, 32)) -> bytes:
    """A small, unique PNG (colour derived from the seed) so sha256 never collides."""
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53 + seed // 256) % 256))
    image.putpixel((0, 0), (seed % 256, (seed // 256) % 256, (seed // 65536) % 256))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")  # hashed when built: no save after a post-generation hook


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = Role.ANNOTATOR


class LabelClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabelClass

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"class{n}")
    order = factory.Sequence(lambda n: n)


class ItemFactory(factory.django.DjangoModelFactory):
    """An item with a real PNG original and thumbnail in the configured storage."""

    class Meta:
        model = Item

    project = factory.SubFactory(ProjectFactory)
    original_name = factory.Sequence(lambda n: f"img{n:05d}.png")
    width = 32
    height = 32
    format = "PNG"

    @factory.lazy_attribute_sequence
    def sha256(self, n):
        return hashlib.sha256(png_bytes(n)).hexdigest()

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        item = model_class(*args, **kwargs)
        data = png_bytes(int(item.sha256[:8], 16))
        item.file.save(item.original_name, ContentFile(data), save=False)
        item.thumbnail.save("thumb.webp", ContentFile(data), save=False)
        item.save()
        return item


def icon_png(kind: str, rng, ink=(0, 0, 0), size: int = 96) -> bytes:
    """A circle or a cross drawn in `ink` on a fully transparent page whose hidden colour is black, as most icon
    sets and drawing programs save them."""
    from PIL import ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    r = int(rng.integers(18, 34))
    cx, cy = (int(v) for v in rng.integers(r + 4, size - r - 4, size=2))
    width = int(rng.integers(3, 7))
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(*ink, 255), width=width)
    else:
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=(*ink, 255), width=width)
        draw.line((cx - r, cy + r, cx + r, cy - r), fill=(*ink, 255), width=width)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bulk_items(project, n: int, **fields) -> list[Item]:
    """`n` item rows in one INSERT, without files (for code that never opens them: the queue, priorities)."""
    made = Item.objects.bulk_create(
        [
            Item(
                project=project, sha256=f"{project.pk:04d}{i:060d}", width=8, height=8, format="PNG",
                original_name=f"x{i}.png", file=f"x/{i}.png", thumbnail=f"t/{i}.webp", **fields,
            )
            for i in range(n)
        ]
    )  # fmt: skip
    return list(Item.objects.filter(pk__in=[m.pk for m in made]).order_by("id"))


_TAXONOMY_TOPS = [
    "animals", "buildings", "clothing", "food", "furniture", "music", "nature", "people", "plants", "sports", "tools",
    "transport", "weather", "space", "office", "kitchen", "medical", "military", "school", "holiday", "toys", "signs",
]  # fmt: skip


def taxonomy_paths() -> list[str]:
    """Leaf paths of a 150-class, 22-top-level, four-level tree, in folder order (depth first), as an import makes.

    Every top level has 2 children; the first child of the first 16 has 3 children; the first of those, under the
    first 12 top levels, has 3 more: 22 + 44 + 48 + 36 = 150 classes.
    """
    paths = []
    for t, top in enumerate(_TAXONOMY_TOPS):
        for c, child in enumerate(["wild", "farm"]):
            if c == 0 and t < 16:
                for g, grand in enumerate(["red", "green", "blue"]):
                    if g == 0 and t < 12:
                        paths += [f"{top}/{child}/{grand}/{leaf}" for leaf in ["one", "two", "three"]]
                    else:
                        paths.append(f"{top}/{child}/{grand}")
            else:
                paths.append(f"{top}/{child}")
    return paths


def page_urls(project) -> dict[str, str]:
    """Every main page of a project (and the API docs), by name: for checks that walk them all."""
    slug = project.slug
    return {
        "projects": reverse("labeling:project_list"),
        "overview": reverse("labeling:project_detail", args=[slug]),
        "label": reverse("labeling:label", args=[slug]),
        "grid": reverse("labeling:grid", args=[slug]),
        "review": reverse("labeling:review", args=[slug]),
        "label errors": reverse("labeling:review_label_errors", args=[slug]),
        "label quality": reverse("labeling:quality", args=[slug]),
        "import": reverse("labeling:import", args=[slug]),
        "exports": reverse("labeling:exports", args=[slug]),
        "settings": reverse("labeling:project_settings", args=[slug]),
        "model": reverse("training:model", args=[slug]),
        "model quality": reverse("training:model_quality", args=[slug]) + "?v=1",
        "model compare": reverse("training:model_compare", args=[slug]),
        "model exports": reverse("training:model_exports", args=[slug]),
        "api docs": reverse("api-docs"),
    }


def page_client(user):
    """A web client signed in as `user` (as a browser is after the sign-in page), for page tests."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def admin_change_post(client, project, **changes):
    """The Django admin's change form of `project` as it comes up, saved by `client` (a staff user's) with `changes`:
    the response (302 saved; 200 with the form's errors)."""
    from labeling.admin import ProjectAdminForm

    data = {k: v for k, v in ProjectAdminForm(instance=project).initial.items() if v is not None and v is not False}
    data.pop("created_by", None)  # read-only in the admin
    data.update(changes, _save="Save")
    return client.post(reverse("admin:labeling_project_change", args=[project.pk]), data)


def api_client(user):
    """A REST client authenticated as `user` without a token: for what an endpoint does, where the token check is not
    the point (`token_client` signs in as a script does)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(user):
    """A REST client that signs in as `user` with an API token (as a script does)."""
    from rest_framework.test import APIClient

    from labeling.api.tokens import token_replace

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_replace(user=user).key}")
    return client


def model_export_stored(version, name: str) -> dict:
    """A small real model-export zip of `version` saved to the export storage as `name`: the result a model export
    build returns (tests that replace the minutes-long build with it)."""
    from labeling.services.exports import export_storage

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{version.project.slug}-v{version.number}/config.json", "{}")
    key = export_storage().save(name, ContentFile(buffer.getvalue()))
    return {"version": version.number, "architecture": version.architecture, "classes": 2,
            "onnx_max_abs_diff": 1e-6, "bytes": export_storage().size(key), "files": [key]}  # fmt: skip


def upload(name: str, data: bytes):
    """A file as a multipart upload carries it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip holding `entries` (path inside the zip -> bytes), stored unless `compression` (a zipfile constant) says.

    Every member carries a fixed date, so the same entries give the same bytes, as a user uploading the same file
    twice would send (writestr with a bare name stamps the current time, and two zips built across a 2-second
    boundary differed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, compression)
    return buffer.getvalue()


def page_import(page, project, files: dict[str, bytes], capture, *, labels_from_folders: bool = False,
                dropped_folder: str | None = None):  # fmt: skip
    """An import as static/js/import.js sends it: the files with their paths (`files`: path -> bytes), then start,
    with "Folders are classes" and the folder dropped or picked; `capture` (django_capture_on_commit_callbacks) runs
    the job. Returns the finished job."""
    from labeling.models import Job, JobStatus

    staged = page.post(
        reverse("labeling:import_upload", args=[project.slug]),
        {"files": [upload(n.rsplit("/", 1)[-1], d) for n, d in files.items()], "names": list(files)},
    ).json()
    start = {"token": staged["token"]}
    if labels_from_folders:
        start["labels_from_folders"] = "on"
    if dropped_folder:
        start["dropped_folder"] = dropped_folder
    with capture(execute=True):
        answer = page.post(reverse("labeling:import_start", args=[project.slug]), start)
    assert answer.status_code == 201, answer.content
    job = Job.objects.filter(project=project).latest("created_at")
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job

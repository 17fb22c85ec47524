"""factory_boy factories; exposed as fixtures in tests/conftest.py."""

from __future__ import annotations

import hashlib
import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
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
    password = factory.PostGenerationMethodCall("set_password", "pw")


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

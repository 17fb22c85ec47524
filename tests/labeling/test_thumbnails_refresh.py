"""`manage.py thumbnails_refresh`: a project imported before the pixel rule gets the grid tiles the model sees."""

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image

from labeling.services.imports import item_create_from_bytes
from tests.factories import icon_png

pytestmark = pytest.mark.django_db


def thumb(item) -> np.ndarray:
    item.refresh_from_db()
    return np.asarray(Image.open(item.thumbnail.open("rb")).convert("RGB")).astype(int)


def test_white_drawings_imported_on_white_get_their_drawing_back_and_jpegs_are_left_alone(project):
    # Given a white icon on transparency whose thumbnail an older release laid on white (a blank tile), and a photo
    white = icon_png("cross", np.random.default_rng(0), ink=(255, 255, 255))
    icon = item_create_from_bytes(project=project, name="star.png", data=white)
    blank = io.BytesIO()
    Image.new("RGB", (96, 96), "white").save(blank, "WEBP")
    icon.thumbnail.save("thumb.webp", ContentFile(blank.getvalue()))
    old_name = icon.thumbnail.name
    assert np.ptp(thumb(icon)) < 5
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo, "JPEG")
    jpeg = item_create_from_bytes(project=project, name="photo.jpg", data=photo.getvalue())
    jpeg_thumb = jpeg.thumbnail.name

    # When the manager runs the command
    out = io.StringIO()
    call_command("thumbnails_refresh", project.slug, stdout=out, verbosity=0)

    # Then the icon's tile shows the drawing, on black, under a new name (browsers cache thumbnails by name)
    tile = thumb(icon)
    assert tuple(tile[0, 0]) == pytest.approx((0, 0, 0), abs=8)
    assert tile.max() > 200
    assert icon.thumbnail.name != old_name
    assert not default_storage.exists(old_name)
    # and the JPEG kept its thumbnail
    jpeg.refresh_from_db()
    assert jpeg.thumbnail.name == jpeg_thumb
    assert (
        "1 thumbnails made again, 0 originals unreadable (kept their old thumbnail), 1 JPEG skipped" in out.getvalue()
    )


def test_unknown_projects_and_missing_arguments_are_refused(project):
    with pytest.raises(CommandError, match="No such project: nope"):
        call_command("thumbnails_refresh", project.slug, "nope", verbosity=0)
    with pytest.raises(CommandError, match="or pass --all"):
        call_command("thumbnails_refresh", verbosity=0)

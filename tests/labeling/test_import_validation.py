"""Per-file validation: every bad file gets a clear reason and changes nothing; odd-but-valid files import."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import pytest
from django.conf import settings
from PIL import Image

from labeling.models import Item, ItemState, Split
from labeling.services.imports import ImportRejected, item_create_from_bytes

pytestmark = pytest.mark.django_db


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size=(64, 48), colour=(200, 30, 30)) -> Image.Image:
    image = Image.new("RGB", size, colour)
    image.paste((10, 10, 240), (0, 0, size[0] // 2, size[1] // 4))  # an asymmetric patch shows rotations
    return image


def stored_files(project) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "projects" / str(project.pk)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def jpeg_bytes() -> bytes:
    return encode(photo((320, 240)), "JPEG", quality=90)


BAD_FILES = {
    "zero-byte": (lambda: b"", "empty file"),
    "truncated JPEG": (lambda: jpeg_bytes()[: len(jpeg_bytes()) // 2], "truncated"),
    "text renamed .jpg": (lambda: b"name,label\ncat.jpg,cat\n", "text file"),
    "HTML": (lambda: b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>", "HTML"),
    "SVG": (
        lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"></svg>',
        "SVG",
    ),
    "ICO (not on the allow-list)": (lambda: encode(photo((32, 32)), "ICO"), "not a supported image"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_rejected_with_a_reason_and_leaves_nothing(project, case):
    make, reason = BAD_FILES[case]
    with pytest.raises(ImportRejected) as info:
        item_create_from_bytes(project=project, name="photo.jpg", data=make())
    assert reason.lower() in info.value.reason.lower()
    assert Item.objects.filter(project=project).count() == 0
    assert stored_files(project) == []


def test_png_over_the_pixel_limit_is_rejected_before_decoding(project, settings):
    settings.LABELLOOP_MAX_IMAGE_PIXELS = 10_000
    data = encode(Image.new("L", (200, 100)), "PNG")
    with pytest.raises(ImportRejected, match="200x100 = 20,000 pixels, over the 10,000 pixel limit"):
        item_create_from_bytes(project=project, name="big.png", data=data)
    assert Item.objects.count() == 0
    assert stored_files(project) == []


def test_file_over_the_byte_limit_is_rejected(project, settings):
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1000
    data = encode(Image.effect_noise((100, 100), 64).convert("RGB"), "PNG")
    with pytest.raises(ImportRejected, match="over the"):
        item_create_from_bytes(project=project, name="noise.png", data=data)
    assert Item.objects.count() == 0


def test_duplicate_bytes_are_rejected_naming_the_first_file(project):
    data = encode(photo(), "PNG")
    first = item_create_from_bytes(project=project, name="first.png", data=data)
    files_before = sorted(stored_files(project))
    with pytest.raises(ImportRejected, match=r"duplicate of first\.png"):
        item_create_from_bytes(project=project, name="again.png", data=data)
    assert list(Item.objects.filter(project=project)) == [first]
    assert sorted(stored_files(project)) == files_before


def test_same_bytes_in_another_project_are_not_a_duplicate(project_factory):
    data = encode(photo(), "PNG")
    item_create_from_bytes(project=project_factory(), name="a.png", data=data)
    assert item_create_from_bytes(project=project_factory(), name="a.png", data=data).pk


def test_valid_png_becomes_an_item_with_files_hashes_and_thumbnail(project):
    texture = Image.merge("RGB", [Image.effect_noise((600, 300), 40 + 20 * i).convert("L") for i in range(3)])
    data = encode(texture, "PNG")
    item = item_create_from_bytes(project=project, name="wide.png", data=data)
    assert (item.format, item.width, item.height, item.original_name) == ("PNG", 600, 300, "wide.png")
    assert item.state == ItemState.UNLABELED
    assert item.split in (Split.TRAIN, Split.HOLDOUT)
    assert 0 <= item.priority < 1
    with item.file.open("rb") as fh:
        assert fh.read() == data  # the original is kept byte for byte
    thumb = Image.open(item.thumbnail.open("rb"))
    assert thumb.format == "WEBP"
    assert max(thumb.size) == settings.LABELLOOP_THUMBNAIL_SIZE
    # Same perceptual hash as the imagehash library, so near-duplicate search can use either.
    assert item.phash == str(imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB")))
    assert item.file.name.endswith(".png")
    assert item.sha256 in item.file.name


def test_exif_rotated_jpeg_records_oriented_size_and_rotates_the_thumbnail(project):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(photo((80, 40)), "JPEG", quality=95, exif=exif.tobytes())
    item = item_create_from_bytes(project=project, name="phone.jpg", data=data)
    assert (item.width, item.height) == (40, 80)
    thumb = Image.open(item.thumbnail.open("rb")).convert("RGB")
    assert thumb.size == (40, 80)
    # The blue patch was top-left; after a clockwise turn it sits top-right.
    assert thumb.getpixel((35, 5))[2] > 150
    assert thumb.getpixel((5, 5))[0] > 150


def test_cmyk_jpeg_imports_with_an_rgb_thumbnail(project):
    data = encode(Image.new("CMYK", (50, 40), (0, 255, 255, 0)), "JPEG")
    item = item_create_from_bytes(project=project, name="print.jpg", data=data)
    thumb = Image.open(item.thumbnail.open("rb")).convert("RGB")
    red, green, blue = thumb.getpixel((25, 20))
    assert item.format == "JPEG"
    assert red > 200
    assert green < 60
    assert blue < 60


def test_16_bit_png_imports_with_visible_contrast(project):
    image = Image.new("I;16", (60, 30))
    image.paste(60000, (30, 0, 60, 30))  # right half bright, beyond 8 bits
    data = encode(image, "PNG")
    item = item_create_from_bytes(project=project, name="xray.png", data=data)
    thumb = Image.open(item.thumbnail.open("rb")).convert("L")
    assert (item.width, item.height) == (60, 30)
    assert thumb.getpixel((5, 15)) < 30
    assert thumb.getpixel((55, 15)) > 220


def test_animated_gif_uses_the_first_frame(project):
    frames = [Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    item = item_create_from_bytes(project=project, name="anim.gif", data=data)
    red, _, blue = Image.open(item.thumbnail.open("rb")).convert("RGB").getpixel((20, 20))
    assert item.format == "GIF"
    assert red > 200
    assert blue < 60


def test_palette_png_with_transparency_is_shown_over_white(project):
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    data = encode(image.convert("P"), "PNG", transparency=0)
    item = item_create_from_bytes(project=project, name="icon.png", data=data)
    assert Image.open(item.thumbnail.open("rb")).convert("RGB").getpixel((10, 10)) == (255, 255, 255)


def test_icons_on_transparency_show_in_the_grid_as_the_model_sees_them(project):
    """White line art on transparency goes on black (on white it was a blank tile); black line art on white."""
    import numpy as np

    from tests.factories import icon_png
    from training.ml.data import load_image

    for ink, page in (((255, 255, 255), (0, 0, 0)), ((0, 0, 0), (255, 255, 255))):
        data = icon_png("cross", np.random.default_rng(3), ink=ink)
        item = item_create_from_bytes(project=project, name=f"icon-{ink[0]}.png", data=data)
        thumb = np.asarray(Image.open(item.thumbnail.open("rb")).convert("RGB")).astype(int)
        assert tuple(thumb[0, 0]) == pytest.approx(page, abs=8), ink
        assert np.abs(thumb - thumb[0, 0]).max() > 200, f"{ink}: a blank tile"
        seen = np.asarray(load_image(io.BytesIO(data)).resize(thumb.shape[1::-1])).astype(int)
        assert np.abs(seen - thumb).mean() < 12, ink  # the same picture, give or take WebP and resizing


def test_unicode_file_name_is_kept(project):
    item = item_create_from_bytes(project=project, name="çà_日本.png", data=encode(photo(), "PNG"))
    item.refresh_from_db()
    assert item.original_name == "çà_日本.png"
    assert item.file.name.endswith(".png")  # stored under its hash, never under the user's name


def test_extension_does_not_decide_the_format(project):
    item = item_create_from_bytes(project=project, name="really-a-png.jpg", data=encode(photo(), "PNG"))
    assert item.format == "PNG"
    assert item.file.name.endswith(".png")


def test_split_follows_the_holdout_fraction_and_is_deterministic(project_factory):
    always = project_factory(holdout_fraction=0.999)
    never = project_factory(holdout_fraction=0.0)
    data = encode(photo(), "PNG")
    assert item_create_from_bytes(project=always, name="a.png", data=data).split == Split.HOLDOUT
    assert item_create_from_bytes(project=never, name="a.png", data=data).split == Split.TRAIN

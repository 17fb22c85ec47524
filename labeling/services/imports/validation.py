"""Validation of one file's bytes: pure (no Django, no database), safe to run on several threads at once.

Every file is decoded with Pillow and checked before anything is stored: byte limit, empty files,
a format allow-list decided by the decoded content (never the extension), a pixel limit checked
from the header before decoding (decompression bombs), and a full decode (truncated files fail).
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imaging.pixels import to_rgb

# Detected format -> stored suffix. MPO is what Pillow calls many camera JPEGs.
ALLOWED_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
                   "TIFF": ".tif"}  # fmt: skip
OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]  # MPO comes through the JPEG opener
ALLOWED_LABEL = "JPEG, PNG, WebP, GIF, BMP, TIFF"
# Exceptions that stop the whole import, never one file: the worker's time limit is raised wherever the
# main thread happens to be, including inside a decode or a store that otherwise rejects just that file.
INTERRUPTIONS = (SoftTimeLimitExceeded,)
T = TypeVar("T")
# A file whose bytes are a zip: renamed, when it was uploaded on its own; a zip inside the zip, when a zip held it (the
# run says so: only it knows where the file came from)
ZIP_RENAMED = "a zip archive, not an image (upload zips as zips, not renamed)"
ZIP_IN_ZIP = "a zip inside the zip: upload it on its own"


def zip_entry_reason(reason: str) -> str:
    """The reason of a zip's entry: one whose bytes are a zip was not renamed, it sits in the zip."""
    return ZIP_IN_ZIP if reason == ZIP_RENAMED else reason


class ImportRejected(Exception):
    """A file that is not imported; `reason` is shown to the user next to the file name."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    thumb_size: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_bytes=settings.LABELLOOP_MAX_UPLOAD_BYTES,
            max_pixels=settings.LABELLOOP_MAX_IMAGE_PIXELS,
            thumb_size=settings.LABELLOOP_THUMBNAIL_SIZE,
        )


@dataclass(frozen=True)
class Inspected:
    """What validation learned about one file."""

    format: str
    width: int
    height: int
    phash: str
    thumbnail: bytes


def entry_over_limit(size: int | None, limit: int) -> str:
    """Why an entry read past `limit` is refused, with its own size when the zip's directory or the file system gave
    one (a read stops just past the limit, so the bytes read cannot say it): the import's and batch inference's
    words."""
    shown = f"{binary_size(size)}, " if size and size > limit else ""
    return f"file is {shown}over the {binary_size(limit)} limit"


def binary_size(n: int) -> str:
    """An import size or limit: the limits are set in binary units (docs/security.md, docs/configuration.md: 4 GiB,
    50 MiB), so they are written in them, named as such ("50.0 MiB"; "13.56 MB" is a model export's decimal size);
    under 1 MiB in KiB."""
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n / 1024:.1f} KiB"  # a 40 KB limit is not "0.0 MiB"


def _sniff_non_image(data: bytes) -> str:
    """A clear reason for common non-images that Pillow cannot identify."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head:
        return "SVG (vector) images are not accepted; convert to PNG first"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512] or b"<body" in head[:1024]:
        return "an HTML page, not an image"
    if head.startswith(b"%pdf"):
        return "a PDF document, not an image"
    if head.startswith(b"pk\x03\x04"):
        return ZIP_RENAMED
    sample = data[:2048]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return "a text file, not an image"
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 4:  # a multi-byte character cut by the sample
                return "a text file, not an image"
    return f"not a supported image (accepted: {ALLOWED_LABEL})"


def _dct_matrix(n: int = 32) -> np.ndarray:
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return 2.0 * np.cos(np.pi * k * (2 * x + 1) / (2 * n))


_DCT32 = _dct_matrix()


def perceptual_hash(image: Image.Image) -> str:
    """imagehash.phash (same 16 hex digits) without importing scipy: 32x32 grey, 2-D DCT-II, 8x8 vs median."""
    pixels = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT32 @ pixels @ _DCT32.T)[:8, :8]
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


_strict_lock = threading.Lock()
_strict_users = 0
_strict_saved = False


@contextlib.contextmanager
def _truncated_images_fail() -> Iterator[None]:
    """Pillow's LOAD_TRUNCATED_IMAGES is one global: hold it False while any thread of ours decodes.

    Reference-counted, so decoder threads never restore it under each other; the value other code
    chose comes back when the last one is done.
    """
    global _strict_users, _strict_saved
    with _strict_lock:
        if _strict_users == 0:
            _strict_saved = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _strict_users += 1
    try:
        yield
    finally:
        with _strict_lock:
            _strict_users -= 1
            if _strict_users == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _strict_saved


def image_open_checked(data: bytes, *, limits: Limits, use: Callable[[Image.Image, str], T]) -> T:
    """Open one file's bytes, run every check that needs only the header (byte limit, empty file, format
    allow-list, pixel limit: no decompression bomb is decoded), then return `use(image, format)`, which decodes
    with truncated files failing. Any failure, in the checks or in `use`, is ImportRejected with a clear reason.
    Thread-safe. The import makes its thumbnail this way (image_inspect); the prediction service decodes its
    model input, once."""
    size = len(data)
    if size == 0:
        raise ImportRejected("empty file (0 bytes)")
    if size > limits.max_bytes:
        raise ImportRejected(f"file is {binary_size(size)}, over the {binary_size(limits.max_bytes)} limit")
    try:
        with _truncated_images_fail(), Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as image:
            return use(image, _checked_header(image, limits))
    except (ImportRejected, *INTERRUPTIONS):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # the warning, if -W error
        raise ImportRejected(f"too many pixels (over the {limits.max_pixels:,} pixel limit)") from None
    except UnidentifiedImageError:
        raise ImportRejected(_sniff_non_image(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise ImportRejected(f"truncated or corrupt image: {decoder_words(exc)}"[:300]) from None
    except Exception as exc:  # any decoder surprise is a bad file, not a crash
        raise ImportRejected(f"could not be decoded ({type(exc).__name__}: {exc})"[:300]) from None


# The decoder's words for a file cut short ("image file is truncated (55 bytes not processed)", where 55 is what it
# held unread, not what is missing), and for WebP data it cannot start on, said plainly.
_DECODER_WORDS = (
    (("image file is truncated", "truncated file read"), "the file ends before the image is complete"),
    (("could not create decoder object",), "the image data cannot be decoded"),
)


def decoder_words(exc: BaseException) -> str:
    """A decoder error as a reason's tail: a known message in plain words, any other without its brackets."""
    text = str(exc) or type(exc).__name__
    lower = text.lower()
    for phrases, words in _DECODER_WORDS:
        if any(phrase in lower for phrase in phrases):
            return words
    while (plain := re.sub(r"\s*\(([^()]*)\)", r", \1", text)) != text:
        text = plain
    return text.strip(" ,")


def _checked_header(image: Image.Image, limits: Limits) -> str:
    """The image's format, after the checks its header allows (only the header has been read so far)."""
    fmt = image.format or ""
    if fmt not in ALLOWED_FORMATS:
        raise ImportRejected(f"{fmt} images are not accepted (accepted: {ALLOWED_LABEL})")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImportRejected("image has no pixels")
    # Pillow's own bomb threshold counts too when it is lower (its warning is not turned into an error here: the
    # warnings filters are process-global, and several threads decode at once).
    max_pixels = min(limits.max_pixels, Image.MAX_IMAGE_PIXELS or limits.max_pixels)
    if width * height > max_pixels:
        raise ImportRejected(
            f"image is {width}x{height} = {width * height:,} pixels, over the {max_pixels:,} pixel limit"
        )
    return fmt


def image_inspect(data: bytes, *, limits: Limits) -> Inspected:
    """Validate one file's bytes and make its thumbnail; raises ImportRejected with a clear reason. Thread-safe."""
    return image_open_checked(data, limits=limits, use=lambda image, fmt: _inspect(image, fmt, limits))


def _inspect(image: Image.Image, fmt: str, limits: Limits) -> Inspected:
    width, height = image.size
    if fmt in ("JPEG", "MPO"):
        # Decode at a reduced DCT scale when the image is much larger than the thumbnail: the whole
        # stream is still read, so truncation is still detected.
        image.draft(image.mode, (limits.thumb_size, limits.thumb_size))
    image.load()  # full decode (first frame of animations)
    orientation = image.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    rgb = to_rgb(ImageOps.exif_transpose(image) if orientation in range(2, 9) else image)
    phash = perceptual_hash(rgb)  # of the oriented image (JPEGs: at draft scale), as imagehash.phash
    rgb.thumbnail((limits.thumb_size, limits.thumb_size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    rgb.save(buffer, "WEBP", quality=80, method=2)
    return Inspected(format="JPEG" if fmt == "MPO" else fmt, width=width, height=height, phash=phash,
                     thumbnail=buffer.getvalue())  # fmt: skip


def inspect_or_reason(data: bytes, limits: Limits) -> Inspected | str:
    """Decoder-thread entry point: the Inspected result or the rejection reason, never an exception."""
    try:
        return image_inspect(data, limits=limits)
    except ImportRejected as exc:
        return exc.reason
    except INTERRUPTIONS:
        raise
    except Exception as exc:  # never let one odd file stop the batch
        return f"could not be read ({type(exc).__name__}: {exc})"[:300]

"""Request images -> the model's input: validated by the import's own code, decoded as training decodes
(EXIF orientation, imaging.pixels' RGB), and transformed as timm's eval transform does, in numpy (no torch in this
process)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image

from imaging.pixels import decoded_rgb
from imaging.shape import RESAMPLE, squash
from labeling.services.imports.validation import Limits, image_open_checked


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # RGB, EXIF orientation applied
    format: str


def serving_limits() -> Limits:
    """The import's limits (no thumbnail is made: its size does not matter)."""
    max_bytes = min(settings.LABELLOOP_MAX_UPLOAD_BYTES, settings.LABELLOOP_SERVING_MAX_BODY_BYTES)
    return Limits(max_bytes=max_bytes, max_pixels=settings.LABELLOOP_MAX_IMAGE_PIXELS, thumb_size=1)


def image_decode(data: bytes, *, limits: Limits) -> Decoded:
    """Check one image as the import does (format allow-list, byte and pixel limits before decoding, truncated
    files fail) and decode it as training does, in one decode. Raises ImportRejected with the reason."""

    def decode(image: Image.Image, fmt: str) -> Decoded:
        return Decoded(image=decoded_rgb(image), format="JPEG" if fmt == "MPO" else fmt)

    return image_open_checked(data, limits=limits, use=decode)


@functools.lru_cache(maxsize=64)
def _normalize_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """3 x 256 float32: (v / 255 - mean) / std for every 8-bit value v of each channel (a lookup per pixel is
    half the time of the arithmetic on a float copy)."""
    values = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return np.stack([(values - np.float32(m)) / np.float32(s) for m, s in zip(mean, std, strict=True)])


def to_input(image: Image.Image, pre: dict, out: np.ndarray | None = None) -> np.ndarray:
    """timm's eval transform (Resize(floor(size / crop_pct)) of the shorter side, CenterCrop(size), ToTensor,
    Normalize) as a float32 CHW array, written into `out` when given (a row of the batch). Images more elongated
    than the checkpoint's squash_aspect are squashed to a square first, as training.ml.data.build_transform does."""
    size = int(pre["image_size"])
    scale = math.floor(size / float(pre.get("crop_pct") or 1.0))
    resample = RESAMPLE.get(str(pre.get("interpolation") or "bicubic"), Image.Resampling.BICUBIC)
    image = squash(image, pre.get("squash_aspect"), scale, resample)
    w, h = image.size
    if w <= h:
        new_w, new_h = scale, int(scale * h / w)
    else:
        new_w, new_h = int(scale * w / h), scale
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), resample)
    top = round((new_h - size) / 2.0)
    left = round((new_w - size) / 2.0)
    if top < 0 or left < 0:  # smaller than the crop: torchvision pads with zeros
        padded = Image.new("RGB", (max(size, new_w), max(size, new_h)))
        padded.paste(image, (max(0, -left), max(0, -top)))
        image, top, left = padded, max(top, 0), max(left, 0)
    pixels = np.asarray(image.crop((left, top, left + size, top + size)))
    table = _normalize_table(tuple(float(v) for v in pre["mean"]), tuple(float(v) for v in pre["std"]))
    out = np.empty((3, size, size), dtype=np.float32) if out is None else out
    for channel in range(3):
        np.take(table[channel], pixels[..., channel], out=out[channel])
    return out

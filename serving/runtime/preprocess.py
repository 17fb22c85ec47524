"""Request images -> the model's input: validated by the import's own code, decoded as training decodes
(EXIF orientation, RGB), and transformed as timm's eval transform does, in numpy (no torch in this process)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image, ImageOps

from labeling.services.imports.validation import ImportRejected, Limits, image_inspect

INTERPOLATION = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # RGB, EXIF orientation applied
    format: str


def serving_limits() -> Limits:
    """The import's limits; the thumbnail it makes while checking is small, as nothing keeps it here."""
    max_bytes = min(settings.LABELLOOP_MAX_UPLOAD_BYTES, settings.LABELLOOP_SERVING_MAX_BODY_BYTES)
    return Limits(max_bytes=max_bytes, max_pixels=settings.LABELLOOP_MAX_IMAGE_PIXELS, thumb_size=32)


def image_decode(data: bytes, *, limits: Limits) -> Decoded:
    """Check one image with the import's validation (format allow-list, byte and pixel limits before decoding,
    truncated files) and decode it as training does. Raises ImportRejected with the reason."""
    inspected = image_inspect(data, limits=limits)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except Exception as exc:  # validation passed, so this is rare: still a bad file, never a crash
        raise ImportRejected(f"could not be decoded ({type(exc).__name__})") from None
    return Decoded(image=rgb, format=inspected.format)


def to_input(image: Image.Image, pre: dict) -> np.ndarray:
    """timm's eval transform (Resize(floor(size / crop_pct)) of the shorter side, CenterCrop(size), ToTensor,
    Normalize) as a float32 CHW array."""
    size = int(pre["image_size"])
    scale = math.floor(size / float(pre.get("crop_pct") or 1.0))
    w, h = image.size
    if w <= h:
        new_w, new_h = scale, int(scale * h / w)
    else:
        new_w, new_h = int(scale * w / h), scale
    resample = INTERPOLATION.get(str(pre.get("interpolation") or "bicubic"), Image.Resampling.BICUBIC)
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), resample)
    top = round((new_h - size) / 2.0)
    left = round((new_w - size) / 2.0)
    if top < 0 or left < 0:  # smaller than the crop: torchvision pads with zeros
        padded = Image.new("RGB", (max(size, new_w), max(size, new_h)))
        padded.paste(image, (max(0, -left), max(0, -top)))
        image, top, left = padded, max(top, 0), max(left, 0)
    image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    mean = np.asarray(pre["mean"], dtype=np.float32)
    std = np.asarray(pre["std"], dtype=np.float32)
    return ((array - mean) / std).transpose(2, 0, 1)

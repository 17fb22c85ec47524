"""One picture per file: how a decoded image of any mode becomes the 8-bit RGB that the grid's thumbnail shows and
the model sees, so the two never disagree.

- 16-bit and float images (scientific and medical PNG/TIFF) are stretched from their own minimum to maximum.
  Pillow's plain convert("RGB") clips them at 255: a 16-bit scan turned almost all white.
- Transparent images are laid on white, or on black when what they show is light (white line art meant for dark
  backgrounds). Pillow's plain convert("RGB") drops the alpha channel and keeps whatever colour the transparent
  pixels happen to hold: black for most icon sets, so black icons on transparency became black squares and every
  image of the set looked the same to the model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Version of the rule above: cached embeddings of non-JPEG images made under another rule are recomputed.
PIXELS_VERSION = 2
# Content lighter than this (alpha-weighted mean luma, 0-1) goes on black, anything else on white. Measured on 15
# classes of drawn symbols saved as transparent PNGs (Lite0 128 px, the product's head, accuracy with 20 labels per
# class, mean of 5 draws; alpha dropped / on white / on mid-grey / this rule):
#   black ink, transparent pixels black (most icon sets)   0.07 / 0.88 / 0.90 / 0.88
#   white ink                                               0.81 / 0.07 / 0.89 / 0.89
#   ink of random colours                                   0.71 / 0.81 / 0.79 / 0.81
#   half on a white page, half transparent                  0.77 / 0.89 / 0.86 / 0.89
LIGHT_CONTENT = 0.5
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SAMPLE = 256  # the luma estimate reads at most about this many pixels a side


def background_for(rgba: Image.Image) -> tuple[int, int, int]:
    """White, or black for light content, judged on the opaque part of the image (alpha-weighted)."""
    step = max(1, max(rgba.size) // _SAMPLE)
    pixels = np.asarray(rgba)[::step, ::step].reshape(-1, 4).astype(np.float32)
    weight = pixels[:, 3]
    if weight.sum() <= 0:
        return (255, 255, 255)  # nothing opaque: nothing to keep visible
    luma = float((pixels[:, :3] @ _LUMA * weight).sum() / weight.sum() / 255.0)
    return (0, 0, 0) if luma > LIGHT_CONTENT else (255, 255, 255)


def flatten_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background_for(rgba), 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def stretch(image: Image.Image) -> Image.Image:
    """16-bit or float grey -> 8-bit grey from the image's own minimum to its maximum (flat images: black)."""
    values = np.asarray(image, dtype=np.float32)
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return Image.fromarray(scaled.clip(0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any decoded mode -> 8-bit RGB (see the module's docstring). EXIF orientation is the caller's."""
    if image.mode.startswith("I") or image.mode == "F":
        return stretch(image).convert("RGB")
    if image.has_transparency_data:  # an alpha band, or a transparent colour (palette, grey or RGB)
        return flatten_alpha(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def oriented_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied, then to_rgb: the picture training, scoring and serving give the model."""
    return to_rgb(ImageOps.exif_transpose(image))


def decoded_rgb(image: Image.Image, draft_size: int | None = None) -> Image.Image:
    """An opened image decoded (once) to the picture the model is given: oriented_rgb. `draft_size`: a JPEG is
    decoded at a DCT scale of at least twice that size instead of full resolution."""
    if draft_size and image.format == "JPEG":
        image.draft("RGB", (draft_size * 2, draft_size * 2))
    image.load()
    return oriented_rgb(image)

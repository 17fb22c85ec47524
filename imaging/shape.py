"""What part of a non-square image the model sees.

timm's eval transform resizes the shorter side and keeps the centre square. For photo-like shapes that is right,
but a panorama, a receipt, a banner or a strip of text loses most of what people labeled: a 3:1 image keeps its
middle third. Images more elongated than SQUASH_ASPECT are therefore resized to a square first (squashed), so the
model sees all of them; the others keep the centre crop. Training, scoring, heatmaps, the batch predictions, the
prediction service and the exported model card all follow the checkpoint's `squash_aspect` (None in checkpoints
made before December 2026: they keep the plain centre crop they were trained with).
"""

from __future__ import annotations

from PIL import Image

# Longer side / shorter side above which an image is squashed instead of centre-cropped. bench/shape.py: 15 classes
# of drawn symbols (96 px) pasted at a random place on white canvases, Lite0 128 px, the product's head on 20
# labels per class, mean of 5 draws (centre crop / squash always / this rule):
#   96 x 96 (1:1)    0.892 / 0.892 / 0.892       240 x 96 (5:2)   0.612 / 0.789 / 0.789
#   128 x 96 (4:3)   0.891 / 0.868 / 0.891       288 x 96 (3:1)   0.462 / 0.753 / 0.753
#   192 x 96 (2:1)   0.812 / 0.805 / 0.812       96 x 288 (1:3)   0.463 / 0.727 / 0.727
# Up to 2:1 the centre crop keeps the object undistorted and wins (by 2.3 points at 4:3); beyond, what it cuts off
# costs far more (18 to 29 points) than the distortion of squashing.
SQUASH_ASPECT = 2.0
# timm's interpolation names -> Pillow's filters.
RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def elongation(width: int, height: int) -> float:
    """Longer side / shorter side (the same after a 90-degree EXIF rotation)."""
    return max(width, height) / max(1, min(width, height))


def squashed(width: int, height: int, max_aspect: float | None) -> bool:
    return bool(max_aspect) and elongation(width, height) > float(max_aspect)


def squash(image: Image.Image, max_aspect: float | None, side: int, resample=Image.Resampling.BICUBIC) -> Image.Image:
    """`image` resized to side x side when it is more elongated than `max_aspect`; otherwise unchanged."""
    if not squashed(image.width, image.height, max_aspect):
        return image
    return image.resize((side, side), resample)


class SquashWide:
    """The torchvision-style transform step: squash() to the side the eval transform resizes to, so its resize is
    then a no-op and its centre crop keeps the whole (squashed) image. Picklable for DataLoader workers."""

    def __init__(self, max_aspect: float, side: int, resample=Image.Resampling.BICUBIC) -> None:
        self.max_aspect, self.side, self.resample = float(max_aspect), int(side), resample

    def __call__(self, image: Image.Image) -> Image.Image:
        return squash(image, self.max_aspect, self.side, self.resample)

    def __repr__(self) -> str:
        return f"SquashWide(max_aspect={self.max_aspect}, side={self.side})"

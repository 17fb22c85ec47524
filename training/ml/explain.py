"""Class-activation heatmaps (Grad-CAM, captum's `LayerGradCam`) of a checkpoint's predictions, as numbers and as
a small PNG overlay.

The heatmap is Grad-CAM on the last convolutional block: the block's activations weighted by the mean gradient of
the class's logit, summed over channels, upsampled to the model input (`LayerAttribution.interpolate`), ReLU,
scaled to 0..1 (an all-zero map stays zero: the class has no positive evidence anywhere).

Head-mode checkpoints are saved as the full timm model (backbone + folded head, `training/ml/checkpoint.py`), so
the backbone is in the graph. A checkpoint whose predictions average the image and its mirror (`MirrorAveraged`)
gets the Grad-CAM of that average: the layer runs on the image and on its mirror in one doubled batch, and the two
weighted maps are summed in image coordinates (the mirror's flipped back) before the ReLU. That is exactly the
Grad-CAM of `MirrorAveraged(model)`; captum's layer hook cannot see a layer called twice, hence the doubled batch.

The overlay covers the whole image at its display size (longest side at most `DISPLAY_MAX`, but a very elongated
image keeps at least `MIN_SHORT_SIDE` rows: `display_size`): the model sees the centre crop of the eval transform,
so the heat is placed on that crop's box and the rest stays transparent (an image more elongated than the
checkpoint's squash_aspect was squashed whole: its box is the whole image). A map with no positive evidence is
fully transparent; the page says so in words (training/selectors/explanation_evidence.py).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from imaging.shape import squashed
from training.ml.models import MirrorAveraged

DISPLAY_MAX = 256
MAX_ALPHA = 0.75  # the hottest pixel still lets the image show through
# Alpha grows with the square of the heat: the cool and middle parts of the map stay see-through, so the image
# under the overlay stays readable (with alpha linear in the heat a 64 px digit vanished under the cyan).
ALPHA_POWER = 2.0
# A very elongated image's overlay keeps this many rows across its short side (or the image's own, when fewer),
# its long side then up to ELONGATED_MAX (review.css gives the image a minimum displayed height to match).
MIN_SHORT_SIDE = 32
ELONGATED_MAX = 4096


def cam_layer(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The last module (in execution order) whose output is a feature map with more than one position: the last
    convolutional block of a CNN (`bn2`, conv_head's norm + activation, in timm's EfficientNets; `layer4` in a
    ResNet). Falls back to the last 4-D output at all when the input is so small that the map is 1x1."""
    model = model.model if isinstance(model, MirrorAveraged) else model
    seen: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [
        m.register_forward_hook(lambda mod, _inp, out: seen.append((mod, tuple(out.shape))))
        for m in model.modules()
        if m is not model
    ]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    maps = [(m, shape) for m, shape in seen if len(shape) == 4]
    if not maps:
        raise ValueError("the model has no convolutional feature map to explain")
    spatial = [m for m, shape in maps if shape[2] * shape[3] > 1]
    return spatial[-1] if spatial else maps[-1][0]


def class_heatmaps(
    model: nn.Module, x: torch.Tensor, targets: int | Sequence[int], *, layer: nn.Module | None = None
) -> np.ndarray:
    """Grad-CAM heatmaps (N, H, W) in 0..1 at the input's resolution for a batch `x` (N, 3, H, W), one target
    class index per image (or one for all). `model` may be `MirrorAveraged`: then the map is the average's."""
    from captum.attr import LayerAttribution, LayerGradCam

    mirror = isinstance(model, MirrorAveraged)
    inner = model.model if mirror else model
    inner.eval()
    layer = layer if layer is not None else cam_layer(inner, x)
    n = len(x)
    target = [int(targets)] * n if isinstance(targets, int) else [int(t) for t in targets]
    if len(target) != n:
        raise ValueError(f"{len(target)} targets for {n} images")
    batch = torch.cat([x, x.flip(-1)]) if mirror else x
    with torch.enable_grad():
        raw = LayerGradCam(inner, layer).attribute(
            batch.detach().clone(), target=target * (2 if mirror else 1), relu_attributions=False
        )
    raw = LayerAttribution.interpolate(raw.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    if mirror:
        raw = raw[:n] + raw[n:].flip(-1)
    heat = torch.relu(raw[:, 0]).float()
    peak = heat.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    heat = torch.where(peak > 1e-12, heat / peak, torch.zeros_like(heat))
    return heat.cpu().numpy()


def class_scores(model: nn.Module, x: torch.Tensor, *, multi_label: bool = False) -> torch.Tensor:
    """Class probabilities (N, C) of a batch: softmax, or sigmoid for multi-label checkpoints."""
    with torch.inference_mode():
        logits = model(x).float()
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def deletion_curve(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    order: np.ndarray,
    *,
    steps: int = 10,
    baseline: float | torch.Tensor = 0.0,
) -> list[float]:
    """The target class's probability as pixels are removed (set to `baseline`) in `order` (flat pixel indices,
    first removed first): steps + 1 values, from the intact image to the fully removed one. `x` is (1, 3, H, W)."""
    h, w = x.shape[-2:]
    total = h * w
    batch = []
    for k in range(steps + 1):
        removed = torch.zeros(total, dtype=torch.bool)
        removed[torch.as_tensor(order[: round(total * k / steps)], dtype=torch.long)] = True
        mask = removed.view(1, h, w)
        batch.append(torch.where(mask, torch.as_tensor(baseline, dtype=x.dtype).view(-1, 1, 1), x[0]))
    return class_scores(model, torch.stack(batch))[:, target].tolist()


def deletion_auc(curve: Sequence[float]) -> float:
    """Area under a deletion curve over the removed share 0..1 (trapezoids): lower means a faster fall."""
    values = np.asarray(curve, dtype=np.float64)
    return float(((values[1:] + values[:-1]) / 2).mean())


# --- the overlay ---


def colormap(heat: np.ndarray) -> np.ndarray:
    """A jet-like colormap: 0 blue, 0.35 cyan, 0.5 green, 0.65 yellow, 1 red. (H, W) in 0..1 -> (H, W, 3) uint8."""
    v = np.clip(heat, 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).round().astype(np.uint8)


def display_size(width: int, height: int, cap: int = DISPLAY_MAX) -> tuple[int, int]:
    """The overlay's pixel size: the image's shape, longest side at most `cap`, but a very elongated image keeps
    at least MIN_SHORT_SIDE rows (or all of its own) across, longest side then up to ELONGATED_MAX: a 3000 x 30
    banner at 256 px across was 3 rows of heat, nothing a page can stretch into a readable map."""
    scale = min(1.0, cap / max(width, height, 1))
    short = max(1, min(width, height))
    if short * scale < MIN_SHORT_SIDE:
        scale = max(scale, min(1.0, MIN_SHORT_SIDE / short, ELONGATED_MAX / max(width, height, 1)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def crop_box(
    width: int, height: int, crop_pct: float = 1.0, squash_aspect: float | None = None
) -> tuple[float, float, float, float]:
    """The part of a width x height image that the eval transform shows the model (resize the shorter side to
    size / crop_pct, centre crop size; an image more elongated than squash_aspect is squashed to a square first,
    so the box spans its whole width and height): (left, top, right, bottom) in image pixels."""
    keep = min(1.0, crop_pct)
    if squashed(width, height, squash_aspect):
        box_w, box_h = width * keep, height * keep
    else:
        box_w = box_h = min(width, height) * keep
    left, top = (width - box_w) / 2, (height - box_h) / 2
    return left, top, left + box_w, top + box_h


def overlay_png(
    heat: np.ndarray,
    width: int,
    height: int,
    *,
    crop_pct: float = 1.0,
    squash_aspect: float | None = None,
    cap: int = DISPLAY_MAX,
) -> bytes:
    """An RGBA PNG of the image's display size: the heatmap (model-input space) on its crop box, coloured with
    `colormap`, alpha growing with the square of the heat; transparent outside the crop."""
    out_w, out_h = display_size(width, height, cap)
    scale = out_w / max(width, 1)
    left, top, right, bottom = (v * scale for v in crop_box(width, height, crop_pct, squash_aspect))
    box_w, box_h = max(1, round(right - left)), max(1, round(bottom - top))
    resized = Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F").resize((box_w, box_h), Image.BILINEAR)
    canvas = np.zeros((out_h, out_w), dtype=np.float32)
    x0, y0 = round(left), round(top)
    patch = np.clip(np.asarray(resized), 0.0, 1.0)[: out_h - y0, : out_w - x0]
    canvas[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
    alpha = (canvas**ALPHA_POWER * MAX_ALPHA * 255).round().astype(np.uint8)
    rgba = np.dstack([colormap(canvas), alpha])
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


# --- a checkpoint, end to end ---


@dataclass
class Explainer:
    """A loaded checkpoint ready to explain images: the serving model and its eval transform."""

    model: nn.Module
    transform: object
    class_names: list[str]
    crop_pct: float
    multi_label: bool
    squash_aspect: float | None = None

    def heatmap(self, image: Image.Image, class_index: int) -> tuple[np.ndarray, float]:
        """(heatmap in model-input space, the class's probability) for one RGB image."""
        if not 0 <= class_index < len(self.class_names):
            raise ValueError(f"class index {class_index} is outside the model's {len(self.class_names)} classes")
        x = self.transform(image).unsqueeze(0)
        heat = class_heatmaps(self.model, x, class_index)[0]
        probability = float(class_scores(self.model, x, multi_label=self.multi_label)[0, class_index])
        return heat, probability

    def overlay(self, image: Image.Image, class_index: int, *, cap: int = DISPLAY_MAX) -> tuple[bytes, float]:
        """(RGBA PNG overlay at the image's display size, the class's probability)."""
        heat, probability = self.heatmap(image, class_index)
        png = overlay_png(
            heat, image.width, image.height, crop_pct=self.crop_pct, squash_aspect=self.squash_aspect, cap=cap
        )
        return png, probability


def load_explainer(ckpt_dir: str | os.PathLike) -> Explainer:
    """The checkpoint's full model (backbone + head, mirror-averaged when its config says so) and its eval
    preprocessing. Raises FileNotFoundError / ValueError for a missing or unreadable checkpoint."""
    from training.ml.checkpoint import load_checkpoint, serving_model
    from training.ml.data import build_transform

    model, cfg = load_checkpoint(Path(ckpt_dir))
    pre = dict(cfg.get("preprocessing") or {})
    for key in ("image_size", "mean", "std"):
        if key not in pre:
            raise ValueError(f"checkpoint config has no preprocessing {key!r}")
    crop_pct = float(pre.get("crop_pct") or 1.0)
    squash_aspect = pre.get("squash_aspect")  # None in checkpoints made before the squash rule: centre crop only
    transform = build_transform(
        {"interpolation": pre.get("interpolation") or "bicubic", "mean": tuple(pre["mean"]), "std": tuple(pre["std"])},
        int(pre["image_size"]),
        is_training=False,
        crop_pct=crop_pct,
        squash_aspect=squash_aspect,
    )
    return Explainer(
        model=serving_model(model.float().eval(), cfg),
        transform=transform,
        class_names=list(cfg.get("class_names") or []),
        crop_pct=crop_pct,
        multi_label=bool(cfg.get("multi_label")),
        squash_aspect=squash_aspect,
    )

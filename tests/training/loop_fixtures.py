"""A small real project for the loop tests: sklearn digits as PNGs, imported through the import service."""

from __future__ import annotations

import io
import json
import random

import numpy as np
from PIL import Image

from labeling.models import Item, LabelClass, Project, Split
from labeling.services.annotations import annotation_create
from labeling.services.imports import item_create_from_bytes
from labeling.services.queue import item_claim_next

# Tiny rounds: the bundled Lite0 at 64 px, embeddings cached, a head on top: seconds on a CPU.
TINY_ROUND = {"num_workers": 0, "score_batch_size": 64, "batch_size": 64}
LOOP_PROJECT = {
    "backbone": "tf_efficientnet_lite0",
    "backbone_weights": "bundled",
    "image_size": 64,
    "training_mode": "head",
    "al_strategy": "margin",
    "holdout_fraction": 0.2,
}


def digit_png(pixels: np.ndarray, size: int = 32) -> bytes:
    """An 8x8 sklearn digit (0..16) as a size x size RGB PNG."""
    gray = (pixels.reshape(8, 8) * (255 / 16)).astype("uint8")
    image = Image.fromarray(gray, "L").resize((size, size), Image.BICUBIC).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def digits_project(project_factory, *, n: int = 300, **settings) -> tuple[Project, dict[int, int], list[LabelClass]]:
    """A project of `n` digit images; returns (project, item id -> true digit, classes "0".."9")."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    project = project_factory(**{**LOOP_PROJECT, **settings})
    classes = [LabelClass.objects.create(project=project, name=str(d), order=d) for d in range(10)]
    truth = {}
    for i in range(n):
        item = item_create_from_bytes(project=project, name=f"digit{i:04d}.png", data=digit_png(digits.data[i]))
        truth[item.pk] = int(digits.target[i])
    return project, truth, classes


class FixedRng(random.Random):
    """random() always returns `value`: pins which pool (train / holdout / gold) the queue tries first."""

    def __init__(self, value: float):
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def label_through_queue(project, user, truth, classes, n: int, *, holdout_every: int = 5) -> list[int]:
    """Label `n` items the way an annotator does: claim the next item, answer with its true digit."""
    done = []
    for k in range(n):
        rng = FixedRng(0.0 if k % holdout_every == 0 else 0.99)  # every 5th claim prefers the holdout
        item = item_claim_next(project=project, user=user, rng=rng)
        assert item is not None, "the queue ran dry"
        annotation_create(item=item, user=user, class_ids=[classes[truth[item.pk]].pk])
        done.append(item.pk)
    return done


def holdout_count(project) -> int:
    return Item.objects.filter(project=project, split=Split.HOLDOUT).count()


def round_overrides_env() -> dict[str, str]:
    return {"LABELLOOP_ROUND_OVERRIDES": json.dumps(TINY_ROUND)}

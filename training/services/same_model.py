"""Whether a run asked for by hand would train the same model as an existing version, so Train now, the API and
manage.py train can say so instead of spending a round (minutes of work, a new version, a new export, a re-score)
on a copy.

The same model: no resolved label changed since the version's snapshot (none updated after its `labels_seen_at`, and
the dataset hash of the labels now equals the version's, which also catches a label taken back), the same output
classes, and the settings the version's checkpoint recorded (its `round_config`) equal the ones a run would use now,
apart from those that never change the weights (SAME_MODEL_IGNORED). Anything this cannot tell (no checkpoint config
readable, a version from before labels_seen_at, an "auto" mode whose worker is unknown) is not the same: the run
trains as before. The scheduler needs none of this: it queues a run only once there are new labels.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

from labeling.models import Project, ResolvedLabel
from labeling.selectors.classes import class_paths, class_tree
from labeling.selectors.exports import dataset_hash
from training.constants import CONFIG_FILE
from training.models import ModelVersion, RunMode
from training.services.artifacts import checkpoint_file_read
from training.services.rounds import round_config
from training.services.snapshot import class_order

logger = logging.getLogger(__name__)

# RoundConfig fields that change the queue's order, speed or the machine, never the trained weights (the seed is the
# run's id: every run has its own).
SAME_MODEL_IGNORED = frozenset(
    {"seed", "device", "num_workers", "strategy", "score_batch_size", "selection_batch", "mc_samples"}
)


def _labels_hash(project: Project) -> str:
    """The dataset hash of the resolved labels as label_snapshot takes it (labeling.selectors.exports.dataset_hash)."""
    resolved: dict[int, tuple[str, set[int]]] = {}
    rows = ResolvedLabel.objects.filter(project=project).values_list("item_id", "item__sha256", "classes__id")
    for item_id, sha, class_id in rows.iterator(chunk_size=5000):
        _, classes = resolved.setdefault(item_id, (sha, set()))
        if class_id is not None:
            classes.add(class_id)
    paths = class_paths(class_tree(project=project))
    return dataset_hash(resolved.values(), paths=paths, multi_label=project.is_multi_label)


def _recorded_config(version: ModelVersion) -> dict[str, Any] | None:
    """The RoundConfig the version's checkpoint recorded, read from the storage (config.json alone), or None."""
    try:
        config = json.loads(checkpoint_file_read(version=version, name=CONFIG_FILE))
    except Exception:  # missing, unreadable, a bucket that does not answer: cannot tell, so not the same
        logger.info("no checkpoint config for v%s at %s", version.number, version.artifact_path, exc_info=True)
        return None
    recorded = config.get("round_config") if isinstance(config, dict) else None
    return recorded if isinstance(recorded, dict) else None


def _mode_now(requested: str, version: ModelVersion) -> str | None:
    """The mode a run asked for as `requested` trains in, where that is known without asking a worker."""
    if requested != RunMode.AUTO:
        return requested
    device = getattr(settings, "LABELLOOP_TRAIN_DEVICE", "") or None
    if device:
        from training.ml.config import resolve_mode  # no torch

        return resolve_mode(requested, device)[0]
    run = version.run
    if run is not None and run.mode_reason.startswith("auto:"):
        return run.mode  # "auto" as then, resolved by a worker like the one that will take this run
    return None


def same_model_version(*, project: Project, mode: str) -> ModelVersion | None:
    """The version (the active one, or the newest if a round held it back) that a run asked for now in `mode` would
    train again, or None. See the module docstring."""
    if mode == RunMode.COLD_START:
        return None
    versions = ModelVersion.objects.filter(project=project).select_related("run")
    candidates = {v.pk: v for v in (versions.filter(active=True).first(), versions.order_by("-number").first()) if v}
    if not candidates:
        return None
    labels_now: str | None = None
    order = class_order(project=project)
    for version in candidates.values():
        run = version.run
        if run is None or run.labels_seen_at is None or list(version.class_ids) != list(order.ids):
            continue
        if ResolvedLabel.objects.filter(project=project, updated_at__gt=run.labels_seen_at).exists():
            return None  # new labels since: every candidate is older than them
        labels_now = labels_now or _labels_hash(project)
        if labels_now != version.dataset_hash:
            continue
        trained_mode = _mode_now(mode, version)
        recorded = _recorded_config(version)
        if trained_mode is None or recorded is None:
            continue
        try:
            now = round_config(project=project, classes=order, mode=trained_mode).to_dict()
        except ValueError:  # weights the project can no longer name: the run will say so itself
            continue
        now = json.loads(json.dumps(now, default=str))  # as the checkpoint stored it (hierarchy keys as text)
        keys = (set(now) | set(recorded)) - SAME_MODEL_IGNORED
        if all(now.get(k) == recorded.get(k) for k in keys):
            return version
    return None


def same_model_message(version: ModelVersion) -> str:
    return f"No new labels since v{version.number} and the same settings: a run would train the same model again."

"""One round of the loop inside a worker: snapshot -> train (or cold start) -> version -> predictions -> priorities.

The only bridge to `training.ml`; it is imported inside the functions (workers and commands only).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.constants import Progress
from labeling.models import Project
from labeling.services.dispatch import task_send
from labeling.services.priorities import item_priorities_set
from training.constants import data_root, project_cache_dir
from training.ml.ranking import draws_every_pick
from training.models import ModelVersion, Prediction, RunMode, RunStatus, TrainingRun
from training.selectors.holdout_figures import HoldoutFigure, holdout_accuracy_on_items, holdout_items_unpredicted
from training.selectors.quality import class_order_of_version
from training.services.artifacts import checkpoint_delete, checkpoint_store, version_checkpoint_dir
from training.services.disk import run_folder_trim
from training.services.promotion import (
    NOT_MADE_ACTIVE,
    made_active_by_hand_during,
    metrics_made_active_by_hand,
    version_held_back_reason,
)
from training.services.run_progress import RunProgress
from training.services.snapshot import ClassOrder, LabelSnapshot, label_snapshot
from training.services.torchrun import RunAbandoned, round_world, torchrun_round
from training.services.versions import version_create
from training.services.weights import backbone_weights_record, backbone_weights_spec

logger = logging.getLogger(__name__)

PREDICTION_BATCH = 1000


def head_pseudo_threshold() -> float:
    """The confidence above which a head-mode round also learns from a pool item's predicted class."""
    from training.ml.config import PSEUDO_THRESHOLD

    return PSEUDO_THRESHOLD


def default_strategy_figures() -> dict[str, int]:
    """The default strategy's switch points, as the model page states them: typicality picks until `per_class`
    labels per class or `max_labels` labels, and `random_pct` % of each batch after the cold start drawn at random."""
    from training.ml.strategies import RANDOM_SHARE, TYPICAL_LABELS_PER_CLASS, TYPICAL_MAX_LABELS

    return {
        "per_class": TYPICAL_LABELS_PER_CLASS,
        "max_labels": TYPICAL_MAX_LABELS,
        "random_pct": round(100 * RANDOM_SHARE),
    }


def round_config(*, project: Project, classes: ClassOrder, mode: str, seed: int = 0):
    """The RoundConfig for a project's settings. LABELLOOP_ROUND_OVERRIDES (JSON) may tune any field."""
    from training.ml.config import RoundConfig

    overrides: dict[str, Any] = dict(getattr(settings, "LABELLOOP_ROUND_OVERRIDES", None) or {})
    if isinstance(overrides, str):
        overrides = json.loads(overrides)
    if multiprocessing.current_process().daemon:
        # A Celery prefork child is daemonic and may not fork DataLoader workers.
        overrides.setdefault("num_workers", 0)
    return RoundConfig(
        backbone=project.backbone,
        weights=backbone_weights_spec(project.backbone_weights),
        image_size=project.image_size,
        flip_average=project.flip_average,
        mode=RunMode.HEAD.value if mode == RunMode.COLD_START else str(mode),
        multi_label=project.is_multi_label,
        strategy=project.al_strategy,
        seed=seed,
        class_names=list(classes.names),
        hierarchy=classes.hierarchy,
        device=getattr(settings, "LABELLOOP_TRAIN_DEVICE", "") or None,
        **overrides,
    )


def round_mode_resolve(*, requested: str) -> tuple[str, str]:
    """(head | finetune, why) for a run that asked for `requested` on this worker: "auto" fine-tunes where the
    worker has CUDA (LABELLOOP_TRAIN_DEVICE, else what torch sees) and trains a head on a CPU."""
    from training.ml.config import resolve_mode

    device = getattr(settings, "LABELLOOP_TRAIN_DEVICE", "") or None
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return resolve_mode(str(requested), device)


def _floats(values: Any) -> list:
    """numpy array / torch tensor / list -> nested Python floats."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
    if hasattr(values, "tolist"):
        values = values.tolist()
    return list(values)


def predictions_write(
    *, version: ModelVersion, ids: Sequence[int], probs: Any, uncertainty: Any, upsert: bool = False
) -> int:
    """Store the full probability vector per item (in version.class_ids order), in batches."""
    class_ids = list(version.class_ids)
    probs, uncertainty = _floats(probs), _floats(uncertainty)
    total = 0
    for start in range(0, len(ids), PREDICTION_BATCH):
        rows = []
        for offset, item_id in enumerate(ids[start : start + PREDICTION_BATCH]):
            vector = [round(float(p), 6) for p in probs[start + offset]]
            best = max(range(len(vector)), key=vector.__getitem__) if vector else None
            rows.append(
                Prediction(
                    item_id=int(item_id),
                    model_version=version,
                    probabilities=vector,
                    predicted_class_id=class_ids[best] if best is not None else None,
                    confidence=vector[best] if best is not None else 0.0,
                    uncertainty=float(uncertainty[start + offset]),
                )
            )
        if upsert:
            Prediction.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["item", "model_version"],
                update_fields=["probabilities", "predicted_class", "confidence", "uncertainty"],
            )
        else:
            Prediction.objects.bulk_create(rows)
        total += len(rows)
    return total


def _still_running(run_id: int) -> bool:
    """Re-check under the row lock: the scheduler may have failed a run whose heartbeats stopped."""
    return TrainingRun.objects.select_for_update().filter(pk=run_id, status=RunStatus.RUNNING).exists()


def _succeed(run: TrainingRun, progress: RunProgress, started: float, **fields) -> None:
    progress.close_stage()
    timings = {**run.timings, **progress.timings, "total": round(time.monotonic() - started, 3)}
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, progress=1.0, stage="done", finished_at=timezone.now(), timings=timings, **fields
    )


def round_execute(*, run: TrainingRun, progress: RunProgress) -> dict:
    """Run the round of a `running` run. Raises on failure (the caller marks the run failed)."""
    from training.ml.pipeline import cold_start_priorities, run_round

    started = time.monotonic()
    project = run.project
    progress.enter("snapshot", 0.0, 0.02)
    snap: LabelSnapshot = label_snapshot(project=project)
    cold = run.mode == RunMode.COLD_START or snap.train_class_count < 2
    if cold:
        mode = RunMode.COLD_START
        reason = (
            "cold start as asked" if run.mode == RunMode.COLD_START
            else f"cold start: {snap.train_class_count} class(es) have training labels, a model needs 2"
        )  # fmt: skip
    else:
        mode, reason = round_mode_resolve(requested=run.mode)
    TrainingRun.objects.filter(pk=run.pk).update(
        label_count=snap.label_count,
        dataset_hash=snap.dataset_hash,
        labels_seen_at=snap.labels_seen_at,
        mode=mode,
        mode_reason=reason[:200],
    )
    run.mode, run.mode_reason = mode, reason[:200]
    if not snap.classes.ids:
        raise ValueError("The project has no label classes to train on.")
    cfg = round_config(project=project, classes=snap.classes, mode=mode, seed=run.pk)
    cache_dir = project_cache_dir(project)
    cache_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"labels": snap.label_count, "pool": len(snap.pool)}

    if cold:
        ids, priority = ([], [])
        if snap.pool:
            ids, priority = cold_start_priorities(snap.pool, cache_dir, cfg, progress.phase(0.02, 0.97))
        progress.enter("priorities", 0.97, 1.0)
        priorities = dict(zip((int(i) for i in ids), (float(p) for p in _floats(priority)), strict=True))
        with transaction.atomic():
            if not _still_running(run.pk):
                return {**summary, "status": "abandoned"}
            drawn = priorities if draws_every_pick(cfg.strategy) else ()  # a random order draws all; others none
            item_priorities_set(project=project, priorities=priorities, random_ids=drawn)
            _succeed(run, progress, started, mode=RunMode.COLD_START)
        return {**summary, "status": RunStatus.SUCCEEDED, "cold_start": True, "ranked": len(priorities)}

    out_dir = data_root() / "projects" / str(project.pk) / "runs" / str(run.pk)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = round_world(project=project, cfg=cfg)
    TrainingRun.objects.filter(pk=run.pk).update(device=world.label(), world_size=world.size)
    if world.size > 1:
        # Several GPUs (or gloo CPU processes): torchrun in a subprocess; rank 0 writes what run_round returns.
        try:
            result = torchrun_round(run=run, cfg=cfg, snap=snap, cache_dir=cache_dir, out_dir=out_dir, world=world,
                                    progress=progress.phase(0.02, 0.9))  # fmt: skip
        except RunAbandoned:
            return {**summary, "status": "abandoned"}
    else:
        result = run_round(cfg, snap.train, snap.holdout, snap.pool, cache_dir, out_dir, progress.phase(0.02, 0.9))

    progress.enter("save", 0.9, 0.91)
    # Every worker machine reads the version through the storage (the row exists only once the files do).
    artifact = checkpoint_store(project_id=project.pk, run_id=run.pk, local_dir=Path(result.checkpoint_dir))
    metrics = dict(result.metrics)
    weights = backbone_weights_record(cfg.weights, chosen=project.backbone_weights)
    if weights is not None:
        metrics["backbone_weights"] = weights  # the model page and card print its sha256
    version = version_create(run=run, snap=snap, artifact=artifact, metrics=metrics, backbone=cfg.backbone)

    progress.enter("predictions", 0.91, 0.97)
    pool_ids = [int(i) for i in _floats(result.pool_ids)]
    predictions_write(version=version, ids=pool_ids, probs=result.pool_probs, uncertainty=result.pool_uncertainty)
    run_folder_trim(out_dir=out_dir, checkpoint_dir=Path(result.checkpoint_dir))  # the storage has its copy

    progress.enter("compare", 0.97, 0.98)
    same_items = active_holdout_figure(version=version, snap=snap)  # outside the transaction: it may score
    progress.enter("priorities", 0.98, 1.0)
    priorities = dict(zip(pool_ids, (float(p) for p in _floats(result.pool_priority)), strict=True))
    drawn = _random_ids(pool_ids, result.pool_random_ids, cfg)
    with transaction.atomic():
        if not _still_running(run.pk):
            version.delete()  # and its checkpoint: no version keeps it
            transaction.on_commit(lambda: checkpoint_delete(artifact_path=artifact))
            return {**summary, "status": "abandoned"}
        held_back = made_active_by_hand_during(run=run)  # a version made active by hand meanwhile (a rollback) stands
        held_back = held_back or version_held_back_reason(version=version, same_items=same_items)
        if held_back:  # kept and listed, not active; the queue keeps the active version's ranking
            version.metrics = {**version.metrics, NOT_MADE_ACTIVE: held_back}
            version.save(update_fields=["metrics"])
        else:
            ModelVersion.objects.filter(project=project, active=True).exclude(pk=version.pk).update(active=False)
            ModelVersion.objects.filter(pk=version.pk).update(active=True)
            item_priorities_set(project=project, priorities=priorities, random_ids=drawn)
            transaction.on_commit(lambda: version_activated_send(project_id=project.pk, version_number=version.number))
        device = world.label() if world.size > 1 or world.requested > 1 else str(result.device)[:40]
        _succeed(run, progress, started, device=device, world_size=world.size)
    return {
        **summary,
        **({NOT_MADE_ACTIVE: held_back} if held_back else {}),
        **({"compared_on_same_holdout": vars(same_items)} if same_items else {}),
        "status": RunStatus.SUCCEEDED,
        "version": version.number,
        "device": str(result.device),
        "world_size": world.size,
        "metrics": {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)},
    }


def model_version_activate(*, version: ModelVersion, made_by=None) -> None:
    """Switch `version` to its project's active version (e.g. one a round held back), then send the same message
    as a round that made it active. Its metrics record the switch by hand (`made_by`, a user or None): a round's
    "not made active" reason moves to "held_back_by_round" (promotion.metrics_made_active_by_hand). The queue keeps
    its ranking until the pool is re-scored: "make active" also re-scores it (training/services/activation.py)."""
    with transaction.atomic():
        others = ModelVersion.objects.select_for_update().filter(project_id=version.project_id, active=True)
        others.exclude(pk=version.pk).update(active=False)
        row = ModelVersion.objects.select_for_update().get(pk=version.pk)
        at = timezone.now().isoformat()
        row.metrics = metrics_made_active_by_hand(row.metrics, by=getattr(made_by, "username", None), at=at)
        ModelVersion.objects.filter(pk=version.pk).update(active=True, metrics=row.metrics)
        version.metrics = row.metrics
        number = version.number
        transaction.on_commit(lambda: version_activated_send(project_id=version.project_id, version_number=number))
    version.active = True


def active_holdout_figure(*, version: ModelVersion, snap: LabelSnapshot) -> HoldoutFigure | None:
    """The active version's accuracy on the holdout items `version` was just evaluated on, from its stored holdout
    predictions; items labeled since are scored with its checkpoint now and stored, as holdout_predictions_write
    would (a few items, embedded by this round in head mode). None without an active version, without `version`'s
    accuracy interval (the rule needs it) or when scoring fails: the round then uses the stored figure. Worker only."""
    project = version.project
    active = ModelVersion.objects.filter(project=project, active=True).exclude(pk=version.pk).first()
    intervals = version.metrics.get("intervals") if isinstance(version.metrics, dict) else None
    if active is None or not snap.holdout or not isinstance(intervals, dict) or not intervals.get("accuracy"):
        return None
    targets = [(item_id, [snap.classes.ids[i] for i in idx]) for item_id, _, idx in snap.holdout]
    try:
        missing = holdout_items_unpredicted(version=active, item_ids=[item_id for item_id, _ in targets])
        if missing:
            from training.ml.pipeline import score_pool

            checkpoint = version_checkpoint_dir(version=active)
            if not checkpoint.is_dir():
                return None
            cfg = round_config(project=project, classes=class_order_of_version(active), mode=RunMode.HEAD,
                               seed=active.number)  # fmt: skip
            rows = [(item_id, path) for item_id, path, _ in snap.holdout if item_id in missing]
            scored = score_pool(checkpoint, rows, project_cache_dir(project), cfg, None)
            ids = [int(i) for i in _floats(scored.pool_ids)]
            predictions_write(version=active, ids=ids, probs=scored.pool_probs, uncertainty=scored.pool_uncertainty,
                              upsert=True)  # fmt: skip
    except Exception:
        logger.exception("v%s could not be measured on v%s's holdout", active.number, version.number)
        return None
    multi = project.is_multi_label
    return holdout_accuracy_on_items(version=active, targets=targets, judged=snap.classes.ids, multi_label=multi)


def _random_ids(pool_ids: list[int], recorded, cfg) -> list[int]:
    """The ranking's random draws (Item.picked_at_random). A result that did not record them (a torchrun result
    file) gets them recomputed: the draws depend only on the strategy, the pool size, the batch and the seed."""
    if recorded is not None:
        return [int(i) for i in _floats(recorded)]
    from training.ml.ranking import DEFAULT_SELECTION_BATCH, random_pick_indices

    picks = random_pick_indices(cfg.strategy, len(pool_ids), cfg.selection_batch or DEFAULT_SELECTION_BATCH, cfg.seed)
    return [pool_ids[int(i)] for i in picks]


def version_activated_send(*, project_id: int, version_number: int) -> bool:
    """After a version goes live: have a worker refresh the review feeds, search for label errors and predict
    the holdout (so the review queue and the confusion drill-down fill on their own). Only a message is sent
    here; a broker outage is logged and never fails the round. False when the message could not be sent."""
    return task_send("training.tasks.model_version_activated_task", project_id, version_number)


def model_score_pool(
    *, project: Project, progress: Progress | None = None, version: ModelVersion | None = None
) -> dict:
    """Re-score the open pool with the active (or given) version; rewrite predictions, and priorities while it is
    the active version (a Scoring job of "make active" scores with the version asked for, even after a run)."""
    version = version or ModelVersion.objects.filter(project=project, active=True).first()
    if version is None:
        raise ValueError(f"Project {project.slug} has no active model version yet; train one first.")
    from training.ml.pipeline import score_pool

    progress = progress or (lambda done, total, message="": None)
    started = time.monotonic()
    snap = label_snapshot(project=project)
    cfg = round_config(project=project, classes=class_order_of_version(version), mode=RunMode.HEAD, seed=version.number)
    if not snap.pool:
        return {"version": version.number, "scored": 0}
    labeled = [(item_id, path) for item_id, path, _ in snap.train]
    checkpoint = version_checkpoint_dir(version=version)
    scored = score_pool(checkpoint, snap.pool, project_cache_dir(project), cfg, progress, labeled=labeled)
    ids, probs, uncertainty, priority = (
        scored.pool_ids,
        scored.pool_probs,
        scored.pool_uncertainty,
        scored.pool_priority,
    )
    ids = [int(i) for i in _floats(ids)]
    progress(1, 1, "predictions")
    predictions_write(version=version, ids=ids, probs=probs, uncertainty=uncertainty, upsert=True)
    progress(1, 1, "priorities")
    priorities = dict(zip(ids, (float(p) for p in _floats(priority)), strict=True))
    drawn = _random_ids(ids, scored.pool_random_ids, cfg)
    summary = {"version": version.number, "scored": len(ids)}
    with transaction.atomic():
        # Another version made active meanwhile (a round, "make active") ranks the pool itself.
        if ModelVersion.objects.filter(pk=version.pk, active=True).exists():
            item_priorities_set(project=project, priorities=priorities, random_ids=drawn)
        else:
            summary["priorities"] = "skipped: another version was made active meanwhile"
    progress(1, 1, "done")
    return {**summary, "seconds": round(time.monotonic() - started, 3)}

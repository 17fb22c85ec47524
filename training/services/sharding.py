"""Re-scoring a project's pool across Celery workers: split the pool into shards, score each on whichever
worker is free, then rank the whole pool once.

    chord(group(score_shard_task(shard) for shard in plan), score_finalize_task)   # training.tasks, queue `gpu`

A shard task embeds its items (EmbeddingStore; cached ones are read, not recomputed), scores them with the
version's checkpoint (read through the storage API, so any machine can), upserts their Prediction rows and
leaves a small `.npz` in the default storage with ids, probabilities, uncertainty and (for the diversity-aware
strategies) embeddings. The finalize step gathers those, ranks the whole pool with
`training.ml.strategies.rank_pool` (a diverse batch cannot be chosen shard by shard) and writes priorities and
the batch's random draws (Item.picked_at_random, `training.ml.ranking`).
Shards are idempotent (upserts, the .npz is replaced), acknowledged late and retried; a shard that keeps
failing fails the scoring Job and leaves priorities as they were.

torch is imported inside the worker-side functions only.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from labeling.models import Item, Job, Project, Split
from labeling.services.dispatch import task_signature
from labeling.services.jobs import job_finish, job_increment, job_start
from labeling.services.priorities import item_priorities_set
from training.constants import project_cache_dir
from training.models import ModelVersion, RunMode
from training.selectors.quality import class_order_of_version
from training.services.artifacts import version_checkpoint_dir
from training.services.rounds import predictions_write, round_config
from training.services.snapshot import OPEN_STATES, item_local_path

logger = logging.getLogger(__name__)

SCORE_QUEUE = "gpu"
STORAGE_PREFIX = "scoring"
# Strategies whose batch depends on where the items lie (embeddings of the pool and of the labeled set).
DIVERSITY_STRATEGIES = ("kcenter", "diverse_margin")


def shard_size() -> int:
    return int(getattr(settings, "LABELLOOP_SCORE_SHARD_SIZE", 2000))


def pool_ids(*, project: Project) -> list[int]:
    """The open, unlabeled train items (what `label_snapshot` calls the pool), ids only: no file is touched."""
    qs = Item.objects.filter(project=project, state__in=OPEN_STATES, split=Split.TRAIN, resolved__isnull=True)
    return list(qs.order_by("pk").values_list("pk", flat=True))


def labeled_train_ids(*, project: Project) -> list[int]:
    qs = Item.objects.filter(project=project, split=Split.TRAIN, resolved__isnull=False)
    return list(qs.order_by("pk").values_list("pk", flat=True))


def _strategy(project: Project) -> str:
    overrides = getattr(settings, "LABELLOOP_ROUND_OVERRIDES", None) or {}
    return str(overrides.get("strategy", project.al_strategy)) if isinstance(overrides, dict) else project.al_strategy


def score_plan(*, project: Project, size: int | None = None) -> list[dict[str, list[int]]]:
    """Shards of at most `size` pool items each; the labeled train items (needed by the diversity-aware
    strategies) are dealt out round-robin so that every shard embeds a fair part of them."""
    size = size or shard_size()
    pool = pool_ids(project=project)
    if not pool:
        return []
    chunks = [pool[start : start + size] for start in range(0, len(pool), max(size, 1))]
    labeled = labeled_train_ids(project=project) if _strategy(project) in DIVERSITY_STRATEGIES else []
    return [{"items": chunk, "labeled": labeled[i :: len(chunks)]} for i, chunk in enumerate(chunks)]


def sharded_scoring_wanted(*, project: Project) -> bool:
    """More than one shard's worth of pool (and sharding not switched off with a shard size of 0)."""
    size = shard_size()
    if size <= 0:
        return False
    qs = Item.objects.filter(project=project, state__in=OPEN_STATES, split=Split.TRAIN, resolved__isnull=True)
    return qs.count() > size


def scoring_workers(*, timeout: float = 1.0) -> list[str]:
    """Hostnames of live workers consuming the scoring queue; [] when the broker or every worker is down."""
    from celery import current_app

    if current_app.conf.task_always_eager:
        return ["eager"]
    try:
        replies = current_app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # broker unreachable
        logger.info("no scoring workers: %s", exc)
        return []
    return sorted(host for host, queues in replies.items() if any(q.get("name") == SCORE_QUEUE for q in queues or []))


def sharded_scoring_start(*, project: Project, job: Job, version: ModelVersion | None = None) -> dict:
    """Send the chord that scores `project`'s pool over the workers; `job` tracks it (finished by the last step).

    Raises ValueError without a model, and the broker's error when it is unreachable (nothing was sent).
    """
    from celery import chord, group

    version = version or ModelVersion.objects.filter(project=project, active=True).first()
    if version is None:
        raise ValueError(f"Project {project.slug} has no active model version yet; train one first.")
    plan = score_plan(project=project)
    batch = uuid.uuid4().hex[:12]
    total = sum(len(shard["items"]) for shard in plan)
    job_start(job=job, total=total, message=f"scoring {total} items in {len(plan)} shards")
    info = {"version": version.number, "shards": len(plan), "pool": total, "batch": batch}
    if not plan:
        job_finish(job=job, result={**info, "scored": 0})
        return info
    header = group(
        task_signature("training.tasks.score_shard_task", project.pk, version.pk, batch, index, shard["items"],
                       shard["labeled"], job.pk).set(queue=SCORE_QUEUE)
        for index, shard in enumerate(plan)
    )  # fmt: skip
    body = task_signature("training.tasks.score_finalize_task", project.pk, version.pk, batch, job.pk)
    chord(header)(body.set(queue=SCORE_QUEUE))
    return info


# ---- worker side ---------------------------------------------------------------------------------------------


def _shard_key(project_id: int, batch: str, index: int) -> str:
    return f"{STORAGE_PREFIX}/{project_id}/{batch}/shard-{index:05d}.npz"


def _rows(project: Project, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(id, local path) of the items that still exist, in id order."""
    ids, rows = sorted(int(i) for i in ids), []
    for start in range(0, len(ids), 900):  # SQLite's bound-variable limit
        qs = Item.objects.filter(project=project, pk__in=ids[start : start + 900]).only(
            "id", "file", "sha256", "project_id"
        )
        rows += [(item.pk, item_local_path(item)) for item in qs.order_by("pk")]
    return rows


def _feature_config(cfg, checkpoint):
    """The checkpoint's feature space (backbone, weights, image size): where its cached embeddings live."""
    from training.ml.checkpoint import mirror_averaged, read_config
    from training.ml.config import RoundConfig

    ck = read_config(checkpoint)
    pre = ck.get("preprocessing") or {}
    return RoundConfig.from_dict(
        {
            **cfg.to_dict(),
            "backbone": ck["architecture"],
            "weights": ck.get("backbone_weights", cfg.weights),
            "image_size": pre.get("image_size", cfg.image_size),
            "crop_pct": pre.get("crop_pct", cfg.crop_pct),
            "squash_aspect": pre.get("squash_aspect"),  # older checkpoints: centre crop only
            "flip_average": mirror_averaged(ck),
            "class_names": ck["class_names"],
            "multi_label": ck.get("multi_label", False),
            "mode": ck.get("mode", "head"),
        }
    )


def _fail_hook(index: int, attempt: int) -> None:
    """Test hook (LABELLOOP_DEBUG_SCORE_SHARD_FAIL): the first attempt of the listed shards raises."""
    listed = {str(x).strip() for x in getattr(settings, "LABELLOOP_DEBUG_SCORE_SHARD_FAIL", []) or []}
    if attempt == 0 and str(index) in listed:
        raise RuntimeError(f"debug hook: shard {index} fails its first attempt")


def score_shard(
    *,
    project_id: int,
    version_id: int,
    batch: str,
    index: int,
    item_ids: Sequence[int],
    labeled_ids: Sequence[int] = (),
    job_id: int | None = None,
    worker: str = "",
    attempt: int = 0,
) -> dict:
    """Score one shard: embeddings, probabilities, Prediction upserts, and the .npz the finalize step reads."""
    import numpy as np

    from training.ml.embeddings import EmbeddingStore
    from training.ml.pipeline import score_pool

    started = time.monotonic()
    version = ModelVersion.objects.select_related("project").filter(pk=version_id).first()
    if version is None:
        return {"index": index, "skipped": "the model version was deleted"}
    project = version.project
    _fail_hook(index, attempt)
    pool = _rows(project, item_ids)
    cfg = round_config(project=project, classes=class_order_of_version(version), mode=RunMode.HEAD, seed=version.number)
    checkpoint = version_checkpoint_dir(version=version)
    cache_dir = project_cache_dir(project)
    scored = score_pool(checkpoint, pool, cache_dir, cfg, None)
    ids = [int(i) for i in scored.pool_ids.tolist()]
    predictions_write(
        version=version, ids=ids, probs=scored.pool_probs, uncertainty=scored.pool_uncertainty, upsert=True
    )
    fcfg = _feature_config(cfg, checkpoint)
    arrays: dict[str, Any] = {
        "ids": np.asarray(ids, dtype=np.int64),
        "probs": np.asarray(scored.pool_probs, dtype=np.float32),
        "uncertainty": np.asarray(scored.pool_uncertainty, dtype=np.float32),
    }
    if cfg.strategy in DIVERSITY_STRATEGIES:
        # Cached in head mode (score_pool just embedded the pool); a fine-tuned model ranks on the pretrained
        # backbone's embeddings here, computed once per item and then cached too.
        labeled = _rows(project, labeled_ids)
        store = EmbeddingStore(cache_dir)
        rows = [*pool, *labeled]
        store.compute([r[0] for r in rows], [r[1] for r in rows], fcfg)
        arrays["emb"] = store.get(ids, fcfg).astype(np.float16)
        arrays["lab_ids"] = np.asarray([r[0] for r in labeled], dtype=np.int64)
        arrays["lab_emb"] = store.get([r[0] for r in labeled], fcfg).astype(np.float16)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    key = _shard_key(project.pk, batch, index)
    if default_storage.exists(key):  # a retried shard replaces its own file
        default_storage.delete(key)
    saved = default_storage.save(key, ContentFile(buffer.getvalue()))
    if saved != key:
        raise RuntimeError(f"storage saved {key!r} as {saved!r}")
    if job_id:
        job_increment(job_id=job_id, by=len(item_ids))
    return {
        "index": index,
        "key": key,
        "scored": len(ids),
        "worker": worker,
        "retries": attempt,
        "seconds": round(time.monotonic() - started, 3),
        "multi_label": bool(fcfg.multi_label),
        "device": str(scored.device),
    }


def pool_priorities(
    *,
    strategy: str,
    probs,
    uncertainty,
    embeddings,
    labeled_embeddings,
    batch_size: int,
    seed: int,
    multi_label: bool,
):
    """A priority per pool item, exactly as a whole-pool `score_pool` ranks (`rank_pool` over the gathered
    arrays). BALD's MC-dropout samples stay in the shards: its per-item scores are ranked as they are."""
    import numpy as np

    from training.ml import strategies
    from training.ml.ranking import random_share

    share = random_share(strategy)  # before bald's stand-in below: the product's strategy decides the draws
    if strategy == "bald":
        # rank_pool orders least_confidence by 1 - max p; two columns (1 - s, s) make that s, in u's order.
        u = np.asarray(uncertainty, dtype=np.float64)
        s = 0.5 * u / max(float(u.max()) if len(u) else 0.0, 1e-12)
        probs, strategy, multi_label = np.stack([1.0 - s, s], axis=1), "least_confidence", False
    return strategies.rank_pool(
        strategy, probs, embeddings, labeled_embeddings, batch_size, seed, multi_label=multi_label, random_share=share
    ).astype(np.float32)


def _load(key: str) -> dict:
    import numpy as np

    with default_storage.open(key, "rb") as fh:
        data = np.load(io.BytesIO(fh.read()))
        return {name: data[name] for name in data.files}


def _cleanup(project_id: int, batch: str, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            default_storage.delete(key)
        except Exception:  # leftovers are harmless; never fail the scoring for them
            logger.warning("could not delete %s", key)
    for folder in (f"{STORAGE_PREFIX}/{project_id}/{batch}",):
        try:
            if not default_storage.listdir(folder)[1]:
                default_storage.delete(folder)
        except Exception:  # object stores have no folders; local disk may already have removed it
            pass


def score_finalize(
    *, project_id: int, version_id: int, batch: str, results: Sequence[dict], job_id: int | None = None
) -> dict:
    """Rank the whole pool from the shards' outputs and write priorities; finishes the Job."""
    import numpy as np

    from training.ml.ranking import DEFAULT_SELECTION_BATCH, random_pick_indices

    job = Job.objects.filter(pk=job_id).first() if job_id else None
    done = [r for r in results if r and r.get("key")]
    keys = [r["key"] for r in done]
    try:
        version = ModelVersion.objects.select_related("project").filter(pk=version_id).first()
        if version is None:
            summary = {"status": "skipped", "reason": "the model version was deleted"}
            if job is not None:
                job_finish(job=job, error="The model version was deleted while scoring.")
            return summary
        project = version.project
        cfg = round_config(
            project=project, classes=class_order_of_version(version), mode=RunMode.HEAD, seed=version.number
        )
        parts = [_load(key) for key in keys]
        ids = np.concatenate([p["ids"] for p in parts]) if parts else np.zeros(0, np.int64)
        order = np.argsort(ids, kind="stable")  # the in-process path ranks the pool in id order too
        ids = ids[order]
        probs = np.concatenate([p["probs"] for p in parts])[order] if parts else None
        uncertainty = np.concatenate([p["uncertainty"] for p in parts])[order] if parts else None
        emb = lab_emb = None
        if parts and all("emb" in p for p in parts):
            emb = np.concatenate([p["emb"] for p in parts])[order].astype(np.float32)
            lab_ids = np.concatenate([p["lab_ids"] for p in parts])
            lab_emb = np.concatenate([p["lab_emb"] for p in parts])[np.argsort(lab_ids, kind="stable")]
            lab_emb = lab_emb.astype(np.float32) if len(lab_emb) else None
        batch_size = cfg.selection_batch or DEFAULT_SELECTION_BATCH
        drawn = ids[random_pick_indices(cfg.strategy, len(ids), batch_size, cfg.seed)].tolist()
        priority = (
            pool_priorities(
                strategy=cfg.strategy,
                probs=probs,
                uncertainty=uncertainty,
                embeddings=emb,
                labeled_embeddings=lab_emb,
                batch_size=batch_size,
                seed=cfg.seed,
                multi_label=any(r.get("multi_label") for r in done),
            )
            if len(ids)
            else np.zeros(0, np.float32)
        )
        workers = Counter(r.get("worker") or "?" for r in done)
        summary = {
            "version": version.number,
            "scored": len(ids),
            "shards": len(done),
            "workers": dict(sorted(workers.items())),
            "retried_shards": sorted(r["index"] for r in done if r.get("retries")),
            "shard_seconds": round(sum(r.get("seconds", 0.0) for r in done), 3),
        }
        with transaction.atomic():
            # A newer version activated meanwhile has ranked the pool itself; do not undo that.
            active = ModelVersion.objects.filter(project=project, active=True).values_list("pk", flat=True).first()
            if active is not None and active != version.pk:
                summary["priorities"] = "skipped: a newer version is active"
            else:
                priorities = dict(zip(ids.tolist(), (float(p) for p in priority), strict=True))
                item_priorities_set(project=project, priorities=priorities, random_ids=drawn)
        if job is not None:
            job_finish(job=job, result=summary)
        return summary
    except Exception as exc:
        logger.exception("finalizing scoring batch %s of project %s failed", batch, project_id)
        if job is not None:
            job_finish(job=job, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        _cleanup(project_id, batch, keys)


def sharded_scoring_fail(*, project_id: int, batch: str, index: int, job_id: int | None, error: str) -> None:
    """A shard gave up after its retries: the Job fails (the chord's last step never runs)."""
    job = Job.objects.filter(pk=job_id).first() if job_id else None
    if job is not None and not job.finished:
        job_finish(job=job, error=f"shard {index} failed: {error}"[:500])
    _cleanup(project_id, batch, [])

"""Celery tasks of sharded re-scoring (training/services/sharding.py): one task per shard, one to finish.

Both run on the `default` queue, on however many workers listen. A shard is idempotent, acknowledged late,
re-queued when its worker dies and retried (with back-off) when it raises; torch loads inside the service.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from training.services import sharding

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    ignore_result=False,  # a chord header: the finalize step waits on these results
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    max_retries=getattr(settings, "LABELLOOP_SCORE_SHARD_RETRIES", 3),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=False,
    soft_time_limit=3600,
    time_limit=3700,
)
def score_shard_task(
    self,
    project_id: int,
    version_id: int,
    batch: str,
    index: int,
    item_ids: list[int],
    labeled_ids: list[int],
    job_id: int | None = None,
) -> dict:
    """Score one shard of a pool (its result feeds score_finalize_task through the chord)."""
    try:
        return sharding.score_shard(
            project_id=project_id, version_id=version_id, batch=batch, index=index, item_ids=item_ids,
            labeled_ids=labeled_ids, job_id=job_id, worker=self.request.hostname or "", attempt=self.request.retries,
        )  # fmt: skip
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("shard %s of scoring batch %s failed for good", index, batch)
            sharding.sharded_scoring_fail(
                project_id=project_id, batch=batch, index=index, job_id=job_id, error=f"{type(exc).__name__}: {exc}"
            )
        else:
            logger.warning("shard %s of scoring batch %s failed (%s); retrying", index, batch, exc)
        raise


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def score_finalize_task(results: list[dict], project_id: int, version_id: int, batch: str, job_id: int | None = None):
    """Rank the whole pool from the shards' results and write the queue priorities."""
    return sharding.score_finalize(
        project_id=project_id, version_id=version_id, batch=batch, results=results, job_id=job_id
    )

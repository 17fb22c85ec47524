"""Celery worker wiring: Redis heartbeats for /healthz and one GPU per pool process.

Listed in CELERY_IMPORTS so every worker connects these handlers before it starts consuming.
Web processes do not import it: they send tasks by name (labeling.services.dispatch); the handlers only fire in workers.
"""

from __future__ import annotations

import logging
import os

from celery import signals

from labeling import heartbeat

logger = logging.getLogger(__name__)

_identity: dict = {}


@signals.worker_ready.connect
def _on_worker_ready(sender=None, **kwargs) -> None:
    """Remember who we are and what we consume; beat once right away."""
    consumer = sender
    _identity["hostname"] = consumer.hostname
    _identity["queues"] = sorted(consumer.app.amqp.queues.consume_from or consumer.app.amqp.queues)
    _identity["concurrency"] = getattr(consumer.pool, "limit", None)
    _beat()


@signals.heartbeat_sent.connect
def _on_heartbeat(sender=None, **kwargs) -> None:
    # Every ~2 s from the worker's event loop (on unless the worker runs --without-heartbeat).
    _beat()


@signals.worker_shutdown.connect
def _on_worker_shutdown(sender=None, **kwargs) -> None:
    if "hostname" in _identity:
        try:
            heartbeat.heartbeat_remove(hostname=_identity["hostname"])
        except Exception:
            logger.warning("could not remove heartbeat of %s", _identity["hostname"], exc_info=True)


def _beat() -> None:
    if "hostname" not in _identity:
        return
    try:
        heartbeat.heartbeat_write(**_identity)
    except Exception as exc:
        # Redis down: the broker is down too and Celery reconnects; do not spam a traceback every 2 s.
        logger.debug("heartbeat not written: %s", exc)


@signals.worker_process_init.connect
def _pin_gpu(**kwargs) -> None:
    """LABELLOOP_WORKER_GPUS=0,1,2,3 with concurrency 4: pool process i sees only GPU i (as cuda:0).

    Runs before any task imports torch (task modules never import it at module level), so
    CUDA_VISIBLE_DEVICES still takes effect. A replaced pool process reuses its index, so its GPU.
    """
    gpus = [g.strip() for g in os.environ.get("LABELLOOP_WORKER_GPUS", "").split(",") if g.strip()]
    if not gpus:
        return
    from billiard.process import current_process

    index = getattr(current_process(), "index", 0) or 0
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    logger.info("pool process %s uses GPU %s", index, os.environ["CUDA_VISIBLE_DEVICES"])

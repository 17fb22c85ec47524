"""Worker heartbeats in Redis: workers write a short-lived key, /healthz reads who is alive on which queues.

A key per worker expires on its own (no clock comparison between machines); a set lists the worker
names so that reading costs one SMEMBERS and one MGET, never a scan of the keyspace.
"""

from __future__ import annotations

import json
import os
import time

import redis
from django.conf import settings

WORKERS_SET = "labelloop:workers"
KEY_PREFIX = "labelloop:worker:"
HEARTBEAT_TTL_SECONDS = 15
# Health checks and heartbeats must never hang a web thread or a worker's event loop.
SOCKET_TIMEOUT_SECONDS = 0.5

_clients: dict[str, redis.Redis] = {}


def redis_client(url: str | None = None) -> redis.Redis:
    """A client with short timeouts, one per URL and process."""
    url = url or settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            retry_on_timeout=False,
            health_check_interval=30,
        )
        _clients[url] = client
    return client


def heartbeat_write(*, hostname: str, queues: list[str], concurrency: int | None = None) -> None:
    payload = {
        "hostname": hostname,
        "queues": sorted(queues),
        "concurrency": concurrency,
        "pid": os.getpid(),
        "at": time.time(),
    }
    pipe = redis_client().pipeline(transaction=False)
    pipe.set(KEY_PREFIX + hostname, json.dumps(payload), ex=HEARTBEAT_TTL_SECONDS)
    pipe.sadd(WORKERS_SET, hostname)
    pipe.execute()


def heartbeat_remove(*, hostname: str) -> None:
    pipe = redis_client().pipeline(transaction=False)
    pipe.delete(KEY_PREFIX + hostname)
    pipe.srem(WORKERS_SET, hostname)
    pipe.execute()


def heartbeats_alive() -> list[dict]:
    """Workers whose heartbeat has not expired, sorted by name; forgets the ones that stopped beating.

    Raises redis.RedisError when Redis cannot be reached.
    """
    client = redis_client()
    names = sorted(n.decode() if isinstance(n, bytes) else n for n in client.smembers(WORKERS_SET))
    if not names:
        return []
    alive, dead = [], []
    for name, raw in zip(names, client.mget([KEY_PREFIX + n for n in names]), strict=True):
        if raw is None:
            dead.append(name)
        else:
            alive.append(json.loads(raw))
    if dead:
        client.srem(WORKERS_SET, *dead)
    return alive

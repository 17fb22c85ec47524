"""`make demo`'s `scripts/ensure_redis.sh` looks for Redis where the settings will: $REDIS_URL, else .env's REDIS_URL.
It checked port 6379 alone, so a checkout whose .env named another port got a second, unused Redis started on 6379
(and left running), while its workers used the one in .env."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_redis.sh"


def ensure(cwd: Path, redis_url: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_PORT")}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return subprocess.run(["bash", str(SCRIPT)], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def test_the_redis_named_in_dot_env_is_the_one_found(tmp_path, redis_server):
    # Given a checkout whose .env points REDIS_URL at a Redis answering on another port than 6379
    (tmp_path / ".env").write_text(f'DJANGO_DEBUG=true\nREDIS_URL="redis://127.0.0.1:{redis_server.port}/0"\n')

    # When make demo makes sure Redis runs
    done = ensure(tmp_path, None)

    # Then it finds that one and starts none
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"redis: already answering on 127.0.0.1:{redis_server.port}"
    assert not (tmp_path / "var").exists()


def test_the_environment_wins_over_dot_env(tmp_path, redis_server):
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:1/0\n")
    done = ensure(tmp_path, f"redis://:secret@localhost:{redis_server.port}/2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"redis: already answering on localhost:{redis_server.port}"


def test_a_redis_on_another_machine_that_does_not_answer_is_said_and_nothing_is_started(tmp_path):
    done = ensure(tmp_path, "redis://192.0.2.1:6379/0")  # TEST-NET-1: never routed
    assert done.returncode == 1
    assert "nothing answers at 192.0.2.1:6379" in done.stderr
    assert not (tmp_path / "var").exists()

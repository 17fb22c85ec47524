"""Fine-tuning on several GPUs: the worker writes the round's JSON, launches
`torchrun --nproc_per_node=N -m training.ml.launch` (DDP: NCCL on GPUs, gloo on CPU), relays rank 0's progress
into the run, stops the processes when the run is no longer running, and reads back what rank 0 wrote.

rounds.round_execute sends a fine-tune run of a project with `gpus` > 1 here; everything else trains inside the
worker process. torch is imported inside the functions (web processes import the services package).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from labeling.models import Project
from training.models import RunStatus, TrainingRun
from training.services.run_progress import RunProgress
from training.services.snapshot import LabelSnapshot

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 30.0  # torchrun gives its ranks SIGTERM, then SIGKILL after its own 30 s
CANCEL_CHECK_SECONDS = 2.0


class RunAbandoned(Exception):
    """The run left `running` (reaped, failed or cancelled elsewhere) while torchrun trained; it was stopped."""


@dataclass(frozen=True)
class World:
    """How many processes train a round, on what."""

    size: int
    device: str  # "cuda" | "cpu"
    requested: int  # project.gpus

    @property
    def backend(self) -> str:
        return "nccl" if self.device == "cuda" else "gloo"

    def label(self) -> str:
        """TrainingRun.device: "cuda x4 (nccl)", "cpu x2 (gloo)"; a clamped request says what was asked."""
        asked = f"{self.requested} asked" if self.size < self.requested else ""
        if self.size > 1:
            text = f"{self.device} x{self.size} ({self.backend}{'; ' + asked if asked else ''})"
        else:
            text = f"{self.device} ({asked})" if asked else self.device
        return text[:40]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def round_world(*, project: Project, cfg: Any) -> World:
    """The processes a round trains with: `project.gpus` for a fine-tune, clamped to the CUDA devices this worker
    sees (CUDA_VISIBLE_DEVICES, LABELLOOP_WORKER_GPUS) or, without CUDA, to the CPU cores (gloo processes).
    A head round is always one process: its cost is the embedding pass, which torchrun would not split."""
    requested = max(1, int(project.gpus or 1))
    device = "cuda" if cfg.resolved_device().startswith("cuda") else "cpu"
    if cfg.mode != "finetune" or requested == 1:
        return World(size=1, device=device, requested=1)
    if device == "cuda":
        import torch

        available = torch.cuda.device_count()
    else:
        available = _cores()
    size = max(1, min(requested, available))
    if size < requested:
        logger.warning("project %s asks for %s %s processes, this worker has %s: training on %s", project.pk,
                       requested, device, available, size)  # fmt: skip
    return World(size=size, device=device, requested=requested)


def torchrun_command(*, world: World, config: Path, out_dir: Path) -> list[str]:
    """The venv's torchrun (`python -m torch.distributed.run`) with a standalone rendezvous on a free port."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world.size}",
        "-m", "training.ml.launch", "--config", str(config), "--out", str(out_dir), "--watch-pid", str(os.getpid()),
    ]  # fmt: skip


def _environment(world: World) -> dict[str, str]:
    env = dict(os.environ)
    root = str(settings.BASE_DIR)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    # torchrun would pin every rank to one thread; share the cores instead (CPU ranks compute with them).
    env.setdefault("OMP_NUM_THREADS", str(max(1, _cores() // world.size)))
    return env


def _round_spec(*, cfg: Any, snap: LabelSnapshot, cache_dir: Path, out_dir: Path, world: World) -> dict[str, Any]:
    config = cfg.to_dict()
    config["device"] = world.device  # each rank takes cuda:LOCAL_RANK; a pinned index would be wrong on rank > 0
    overrides = getattr(settings, "LABELLOOP_ROUND_OVERRIDES", None) or {}
    if isinstance(overrides, str):
        overrides = json.loads(overrides)
    if "num_workers" not in overrides:
        # The ranks are not daemonic (a Celery child is): they may load with workers, sharing the cores.
        config["num_workers"] = min(8, max(0, _cores() // world.size - 1))
    return {
        "config": config,
        "labeled": [[i, p, list(ls)] for i, p, ls in snap.train],
        "holdout": [[i, p, list(ls)] for i, p, ls in snap.holdout],
        "pool": [[i, p] for i, p in snap.pool],
        "cache_dir": str(cache_dir),
        "out_dir": str(out_dir),
    }


def _still_running(run_id: int) -> bool:
    return TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).exists()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to torchrun's process group (the agent stops its ranks), SIGKILL after a grace period. Ranks that
    outlive a killed agent exit on their own (launch.main watches its parent)."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _relay(proc: subprocess.Popen, *, run_id: int, progress: RunProgress) -> bool:
    """Feed rank 0's JSON progress lines to `progress` until torchrun exits. True when the run stopped being
    `running` on the way (the caller stops torchrun)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        try:
            for line in proc.stdout:
                lines.put(line)
        except (OSError, ValueError):  # the pipe was closed under us after torchrun was stopped
            pass
        lines.put(None)

    threading.Thread(target=read, name=f"torchrun-{proc.pid}", daemon=True).start()
    eof, checked = False, time.monotonic()
    while not (eof and proc.poll() is not None):
        try:
            line = lines.get(timeout=0.5) if not eof else None
        except queue.Empty:
            line = ""
        if line is None:
            eof = True
            time.sleep(0.2 if proc.poll() is None else 0)
        elif line.strip():
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict) and "stage" in message:
                fraction = float(message.get("progress", 0.0))
                progress(round(fraction * 10_000), 10_000, str(message["stage"]))
            else:
                logger.info("torchrun: %s", line.rstrip())
        if time.monotonic() - checked >= CANCEL_CHECK_SECONDS:
            checked = time.monotonic()
            if not _still_running(run_id):
                return True
    return False


def _log_tail(path: Path, limit: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _read_result(out_dir: Path):
    import numpy as np

    from training.ml.pipeline import RoundResult

    summary = json.loads((out_dir / "result.json").read_text())
    with np.load(out_dir / "result.npz") as npz:
        arrays = {k: npz[k] for k in ("pool_ids", "pool_probs", "pool_uncertainty", "pool_priority")}
        arrays["pool_random_ids"] = npz["pool_random_ids"] if "pool_random_ids" in npz.files else None
    return RoundResult(
        metrics=summary["metrics"],
        checkpoint_dir=Path(summary["checkpoint_dir"]),
        device=str(summary["device"]),
        embedding_dim=int(summary["embedding_dim"]),
        timings=dict(summary["metrics"].get("timings") or {}),
        **arrays,
    )


def torchrun_round(
    *,
    run: TrainingRun,
    cfg: Any,
    snap: LabelSnapshot,
    cache_dir: Path,
    out_dir: Path,
    world: World,
    progress: RunProgress,
):
    """Train, evaluate and score one round with `world.size` torchrun processes; returns what rank 0 wrote as a
    pipeline.RoundResult. Raises RuntimeError (with the log's tail) when torchrun fails, RunAbandoned when the run
    stopped being `running` meanwhile. The soft time limit (or any error here) stops torchrun too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "result.npz"):
        (out_dir / stale).unlink(missing_ok=True)
    config = out_dir / "round.json"
    config.write_text(json.dumps(_round_spec(cfg=cfg, snap=snap, cache_dir=cache_dir, out_dir=out_dir, world=world)))
    log_path = out_dir / "torchrun.log"
    command = torchrun_command(world=world, config=config, out_dir=out_dir)
    logger.info("run %s: %s", run.pk, " ".join(command))
    progress(0, 1, "launch")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=_environment(world), stdout=subprocess.PIPE, stderr=log, text=True,
            bufsize=1, start_new_session=True,
        )  # fmt: skip
        try:
            abandoned = _relay(proc, run_id=run.pk, progress=progress)
        finally:
            if proc.poll() is None:
                _stop(proc)
            if proc.stdout:
                proc.stdout.close()
    if abandoned:
        raise RunAbandoned(f"run {run.pk} is no longer running; torchrun was stopped")
    if proc.returncode != 0:
        raise RuntimeError(
            f"torchrun ({world.size} {world.device} processes) exited with status {proc.returncode}; "
            f"the end of {log_path}:\n{_log_tail(log_path)}"
        )
    return _read_result(out_dir)

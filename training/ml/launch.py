"""The round CLI, the one entry point of training/ml for `python -m` and `torchrun -m`: one round from a JSON file.

`python -m training.ml.launch --config round.json` runs the round (pipeline.run_round) in one process and writes
result.json + result.npz; `--ddp` uses the data-parallel trainer there too. Several GPUs:
`torchrun --nproc_per_node=N -m training.ml.launch --config round.json` fine-tunes with DDP (training.ml.ddp;
NCCL on GPUs, gloo on CPU) and only rank 0 evaluates, scores and writes. The library modules never import this one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.ml.config import RoundConfig
from training.ml.ddp import ddp_finetune, init_distributed
from training.ml.pipeline import run_round


def _exit_when_orphaned(launcher_pid: int | None) -> None:
    """Under torchrun: end this rank when its torchrun agent or the process that launched torchrun (a Celery
    worker, `--watch-pid`) is gone, so a hard-killed worker never leaves ranks training on the GPUs. The agent then
    sees a failed rank and stops the others."""
    parent = os.getppid()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def watch() -> None:
        while True:
            time.sleep(2.0)
            if os.getppid() != parent or (launcher_pid and not alive(launcher_pid)):
                print("training.ml.launch: launcher gone, exiting", file=sys.stderr, flush=True)
                os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """One round from a JSON file. Under torchrun (WORLD_SIZE > 1) a fine-tune round trains with DDP on every
    rank (training.ml.ddp), then rank 0 alone evaluates, scores the pool and writes; the other ranks exit 0.
    A head round is single-process (ranks other than 0 exit at once)."""
    parser = argparse.ArgumentParser(prog="python -m training.ml.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="round.json (see training/ml/pipeline.py)")
    parser.add_argument("--out", type=Path, help="result folder (default: the JSON's out_dir)")
    parser.add_argument(
        "--ddp", action="store_true",
        help="fine-tune with the data-parallel trainer even in one process (automatic under torchrun)",
    )  # fmt: skip
    parser.add_argument(
        "--bn", choices=("auto", "sync", "frozen", "batch"), default="auto",
        help="BatchNorm across DDP ranks (default: sync on CUDA, frozen on CPU, batch in one process)",
    )  # fmt: skip
    parser.add_argument("--no-augment", action="store_true", help="DDP: deterministic transforms (comparisons)")
    parser.add_argument("--watch-pid", type=int, help="under torchrun: exit when this process is gone")
    args = parser.parse_args(argv)
    spec = json.loads(args.config.read_text())
    cfg = RoundConfig.from_dict(spec["config"])
    out_dir = Path(args.out or spec["out_dir"])
    labeled = [(int(i), p, list(ls)) for i, p, ls in spec["labeled"]]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        _exit_when_orphaned(args.watch_pid)
    trainer, dist_info = None, None
    if cfg.mode == "finetune" and (world > 1 or args.ddp):
        import torch.distributed as dist

        dist_info = init_distributed(cfg.device)

        def trainer(cfg, paths, labels, *, opener=None, progress=None):
            return ddp_finetune(
                cfg, paths, labels, dist_info=dist_info, opener=opener, augment=not args.no_augment, bn=args.bn,
                progress=progress,
            )  # fmt: skip

        if dist_info.rank != 0:
            try:  # the same collectives as rank 0's run_round makes; then rank 0 goes on alone
                trainer(cfg, [r[1] for r in labeled], [r[2] for r in labeled])
            finally:
                dist.destroy_process_group()
            return 0
    elif world > 1 and int(os.environ.get("RANK", "0")) != 0:
        return 0  # a head round: the embedding pass is not split across ranks
    world = dist_info.world if dist_info else 1

    def progress(done: int, total: int, message: str = "") -> None:
        # One JSON line per report; the worker's relay (training.services.torchrun) reads the same two keys.
        print(json.dumps({"stage": message, "progress": round(done / total if total else 1.0, 4)}), flush=True)

    try:
        result = run_round(
            cfg,
            labeled=labeled,
            holdout=[(int(i), p, list(ls)) for i, p, ls in spec.get("holdout", [])],
            pool=[(int(i), p) for i, p in spec.get("pool", [])],
            cache_dir=Path(spec["cache_dir"]),
            out_dir=out_dir / "checkpoint",
            progress=progress,
            trainer=trainer,
        )
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_dir / "result.npz",
        pool_ids=result.pool_ids,
        pool_probs=result.pool_probs,
        pool_uncertainty=result.pool_uncertainty,
        pool_priority=result.pool_priority,
        pool_random_ids=np.asarray(result.pool_random_ids if result.pool_random_ids is not None else [], np.int64),
    )
    summary = {
        "metrics": result.metrics,
        "checkpoint_dir": str(result.checkpoint_dir),
        "device": result.device,
        "embedding_dim": result.embedding_dim,
        "world_size": world,
        "backend": ("nccl" if result.device.startswith("cuda") else "gloo") if world > 1 else None,
    }
    (out_dir / "result.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"done": True, "out": str(out_dir), "world_size": world}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

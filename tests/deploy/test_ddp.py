"""`torchrun --nproc_per_node=2 -m training.ml.train` (DDP over gloo on CPU) fine-tunes to the same weights as
one process with the same global batch, then rank 0 alone evaluates, scores the pool and writes; the checkpoint
is the one the scoring code loads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    # Needs no database of the suite's: run it once, in the SQLite pass of `make test`, not again on PostgreSQL.
]


def make_round(tmp_path: Path, n: int = 36, n_labeled: int = 24, n_holdout: int = 4) -> Path:
    """A 3-class colour round: `n_labeled` labeled, `n_holdout` holdout, the rest pool (32 px PNGs)."""
    rng = np.random.default_rng(0)
    labeled = []
    for i in range(n):
        label = i % 3
        pixels = rng.integers(0, 80, size=(32, 32, 3), dtype=np.uint8)
        pixels[..., label] += 150  # the class is the dominant channel: learnable in a few steps
        path = tmp_path / "images" / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(path)
        labeled.append([i, str(path), [label]])
    spec = {
        "config": {
            "backbone": "tf_efficientnet_lite0",
            "weights": "bundled",
            "image_size": 32,
            "mode": "finetune",
            "epochs": 2,
            "batch_size": 8,
            "lr": 3e-4,  # a stable descent: the float noise of a different all-reduce order stays ~1e-6
            "drop_rate": 0.0,
            "num_workers": 0,
            "device": "cpu",
            "class_names": ["red", "green", "blue"],
            "seed": 3,
            "strategy": "margin",
        },
        "labeled": labeled[:n_labeled],
        "holdout": labeled[n_labeled : n_labeled + n_holdout],
        "pool": [[i, p] for i, p, _ in labeled[n_labeled + n_holdout :]],
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "round.json"
    path.write_text(json.dumps(spec))
    return path


def run(cmd: list[str]) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_two_torchrun_processes_give_the_single_process_round_and_only_rank_0_writes(tmp_path):
    from safetensors.numpy import load_file

    from training.ml.checkpoint import load_checkpoint

    spec = make_round(tmp_path)
    # The reference: the same data-parallel trainer in one process (--ddp). BatchNorm statistics frozen and no
    # random augmentation, so how a batch is split over ranks cannot change the result.
    common = ["--config", str(spec), "--bn", "frozen", "--no-augment"]
    run([sys.executable, "-m", "training.ml.train", "--ddp", *common, "--out", str(tmp_path / "single")])
    stdout = run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "training.ml.train", *common, "--out", str(tmp_path / "ddp")]
    )  # fmt: skip

    # Only rank 0 wrote: one result, one "done" line, nothing else in the result folder or beside it.
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoint", "result.json", "result.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "images", "round.json", "single"]
    assert stdout.count('"done": true') == 1
    single = json.loads((tmp_path / "single" / "result.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert (single["world_size"], ddp["world_size"], ddp["backend"]) == (1, 2, "gloo")
    assert ddp["metrics"]["world_size"] == 2  # the trainer ran in a process group of 2
    # The loss over each epoch is the mean over every image of every rank: the same as one process saw.
    for a, b in zip(single["metrics"]["history"], ddp["metrics"]["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)

    w1 = load_file(tmp_path / "single" / "checkpoint" / "model.safetensors")
    w2 = load_file(tmp_path / "ddp" / "checkpoint" / "model.safetensors")
    assert w1.keys() == w2.keys()
    moved = np.abs(w1["classifier.weight"]).mean()  # the freshly initialised classifier was trained
    diff = max(float(np.abs(w1[k].astype(np.float64) - w2[k]).max()) for k in w1 if w1[k].dtype.kind == "f")
    assert moved > 1e-3
    assert diff < 1e-4, f"DDP and single-process weights differ by {diff}"

    # Rank 0's evaluation and pool scoring match the single process's.
    r1, r2 = np.load(tmp_path / "single" / "result.npz"), np.load(tmp_path / "ddp" / "result.npz")
    assert r1["pool_ids"].tolist() == r2["pool_ids"].tolist() == list(range(28, 36))
    np.testing.assert_allclose(r1["pool_probs"], r2["pool_probs"], atol=1e-4)
    np.testing.assert_allclose(r1["pool_uncertainty"], r2["pool_uncertainty"], atol=1e-4)
    assert single["metrics"]["n"] == ddp["metrics"]["n"] == 4
    assert single["metrics"]["accuracy"] == ddp["metrics"]["accuracy"]

    # The checkpoint is the pipeline's format: it loads and predicts like the single-process one.
    import torch

    m1, _ = load_checkpoint(tmp_path / "single" / "checkpoint")
    m2, cfg2 = load_checkpoint(tmp_path / "ddp" / "checkpoint")
    assert cfg2["mode"] == "finetune"
    assert cfg2["class_names"] == ["red", "green", "blue"]
    x = torch.rand(4, 3, 32, 32)
    with torch.inference_mode():
        p1, p2 = m1(x).softmax(1), m2(x).softmax(1)
    assert torch.allclose(p1, p2, atol=1e-4)


def test_training_ml_ddp_is_an_alias_of_the_round_cli(monkeypatch):
    import training.ml.train
    from training.ml import ddp

    calls = []
    monkeypatch.setattr(training.ml.train, "main", lambda argv: calls.append(argv) or 0)
    assert ddp.main(["--config", "round.json", "--bn", "frozen"]) == 0
    assert calls == [["--config", "round.json", "--bn", "frozen", "--ddp"]]


def test_a_rank_exits_when_the_worker_that_launched_torchrun_is_killed():
    """A hard-killed Celery worker (time limit, OOM) must not leave ranks training: each rank watches it."""
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    rank = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom training.ml.train import _exit_when_orphaned\n"
         "_exit_when_orphaned(int(sys.argv[1])); print('watching', flush=True); time.sleep(60)", str(launcher.pid)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert rank.stdout.readline().strip() == "watching"
        launcher.kill()
        launcher.wait()
        assert rank.wait(timeout=15) == 1
    finally:
        for proc in (launcher, rank):
            if proc.poll() is None:
                proc.kill()

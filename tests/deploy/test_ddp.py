"""`torchrun --nproc_per_node=2 -m training.ml.launch` (DDP over gloo on CPU) fine-tunes to the same weights as
one process with the same global batch, then rank 0 alone evaluates, scores the pool and writes; the checkpoint
is the one the scoring code loads. The data-parallel trainer keeps the one-process recipe: class-balanced
sampling split over ranks, a validation split and early stopping with the best weights restored."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
def test_two_torchrun_processes_give_the_single_process_round_and_only_rank_0_writes(tmp_path):
    from safetensors.numpy import load_file

    from training.ml.checkpoint import load_checkpoint

    spec = make_round(tmp_path)
    # The reference: the same data-parallel trainer in one process (--ddp). BatchNorm statistics frozen and no
    # random augmentation, so how a batch is split over ranks cannot change the result.
    common = ["--config", str(spec), "--bn", "frozen", "--no-augment"]
    run([sys.executable, "-m", "training.ml.launch", "--ddp", *common, "--out", str(tmp_path / "single")])
    stdout = run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "training.ml.launch", *common, "--out", str(tmp_path / "ddp")]
    )  # fmt: skip

    # Only rank 0 wrote: one result, one "done" line, nothing else in the result folder or beside it.
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoint", "result.json", "result.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "images", "round.json", "single"]
    assert stdout.count('"done": true') == 1
    single = json.loads((tmp_path / "single" / "result.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert (single["world_size"], ddp["world_size"], ddp["backend"]) == (1, 2, "gloo")
    assert ddp["metrics"]["world_size"] == 2  # the trainer ran in a process group of 2
    # The same validation split (3 of the 24 labeled images), scored in two halves and all-reduced.
    for metrics in (single["metrics"], ddp["metrics"]):
        assert (metrics["train_size"], metrics["val_size"]) == (21, 3)
    assert single["metrics"]["best_val_score"] == pytest.approx(ddp["metrics"]["best_val_score"], abs=1e-5)
    # The loss over each epoch is the mean over every image of every rank: the same as one process saw.
    for a, b in zip(single["metrics"]["history"], ddp["metrics"]["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_score"] == pytest.approx(b["val_score"], abs=1e-5)

    w1 = load_file(tmp_path / "single" / "checkpoint" / "model.safetensors")
    w2 = load_file(tmp_path / "ddp" / "checkpoint" / "model.safetensors")
    assert w1.keys() == w2.keys()
    moved = np.abs(w1["classifier.weight"]).mean()  # the classifier, started at zero, was trained
    diff = max(float(np.abs(w1[k].astype(np.float64) - w2[k]).max()) for k in w1 if w1[k].dtype.kind == "f")
    assert moved > 0
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


def test_training_ml_has_one_entry_point_the_launcher_and_no_library_module_imports_it():
    """`-m training.ml.launch` is what torchrun and a user run; the library (train, ddp, ...) has no __main__."""
    import ast

    mains, importers = [], []
    for path in sorted((ROOT / "training" / "ml").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                mains.append(path.stem)
            if isinstance(node, ast.ImportFrom) and node.module == "training.ml.launch" and path.stem != "launch":
                importers.append(path.stem)
    assert mains == ["launch"]
    assert importers == []


def test_single_process_and_ddp_fine_tuning_share_one_epoch_loop():
    """The optimizer step (AMP scaler, scheduler) is written once, in train_epoch, which both paths call: a fix to
    the loop (loss, clipping, AMP) reaches DDP runs too."""
    import ast

    stepping, callers = [], []
    for path in sorted((ROOT / "training" / "ml").glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            body = ast.unparse(fn)
            if "scaler.step(" in body and fn.name != "train_epoch":
                stepping.append(f"{path.stem}.{fn.name}")
            if any(isinstance(c, ast.Call) and ast.unparse(c.func) == "train_epoch" for c in ast.walk(fn)):
                callers.append(f"{path.stem}.{fn.name}")
    assert stepping == []
    assert {c.split(".")[0] for c in callers} == {"train", "ddp"}


@pytest.mark.slow
def test_a_rank_exits_when_the_worker_that_launched_torchrun_is_killed():
    """A hard-killed Celery worker (time limit, OOM) must not leave ranks training: each rank watches it."""
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    rank = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom training.ml.launch import _exit_when_orphaned\n"
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


def test_the_distributed_sampler_draws_an_imbalanced_set_class_balanced_and_splits_one_sequence_over_ranks():
    from torch.utils.data import DataLoader

    from training.ml.ddp import DistributedWeightedSampler, balanced_weights

    labels = [[0]] * 90 + [[1]] * 8 + [[2]] * 3  # 101 items, 30:1 between the largest and the smallest class
    weights = balanced_weights(labels)
    one = DistributedWeightedSampler(weights, num_replicas=1, rank=0, seed=5)
    ranks = [DistributedWeightedSampler(weights, num_replicas=2, rank=r, seed=5) for r in range(2)]
    first = np.array([ls[0] for ls in labels])
    drawn, sequences = np.zeros(3), set()
    for epoch in range(10):
        for s in (one, *ranks):
            s.set_epoch(epoch)
        whole = list(one)
        assert len(whole) == 101
        sequences.add(tuple(whole))
        drawn += np.bincount(first[whole], minlength=3)
        # Every rank draws the same global sequence (cut to 100: drop_last) and takes every other position of it.
        r0, r1 = list(ranks[0]), list(ranks[1])
        assert len(r0) == len(r1) == len(ranks[0]) == 50
        interleaved = [i for pair in zip(r0, r1, strict=True) for i in pair]
        assert interleaved == whole[:100]
        # So, 4 images a rank, the ranks' k-th batches together are the k-th global batch of 8 of one process.
        local = [list(DataLoader(range(101), batch_size=4, sampler=s, drop_last=True)) for s in ranks]
        glob = list(DataLoader(range(101), batch_size=8, sampler=one, drop_last=True))
        assert len(local[0]) == len(local[1]) == len(glob) == 12
        for b0, b1, b in zip(*local, glob, strict=True):
            assert sorted(b0.tolist() + b1.tolist()) == sorted(b.tolist())
    assert len(sequences) == 10  # a new draw each epoch (seed + epoch), the same on every rank
    share = drawn / drawn.sum()
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.05)  # 89 % of the set is class 0; a third of the draws


def tiny_finetune(tmp_path: Path, **overrides):
    """The equivalence round's 24 labeled images and config, with a small from-scratch resnet."""
    from training.ml.config import RoundConfig

    spec = json.loads(make_round(tmp_path).read_text())
    cfg = RoundConfig.from_dict(
        {**spec["config"], "backbone": "resnet10t", "weights": "none", "score_batch_size": 2, **overrides}
    )
    return cfg, [r[1] for r in spec["labeled"]], [r[2] for r in spec["labeled"]]


ONE = dict(rank=0, world=1, local_rank=0, device="cpu")


def test_early_stopping_stops_after_patience_epochs_without_improvement_and_restores_the_best_weights(
    tmp_path, monkeypatch
):
    import torch

    from training.ml import ddp

    cfg, paths, labels = tiny_finetune(tmp_path, epochs=6, patience=2, lr=1e-3)
    # Scripted validation: accuracy 0.5, 0.9, 0.7, 0.6, ... so epoch 1 is the best and epoch 3 the second miss.
    correct, states = iter([5, 9, 7, 6, 8, 8]), []

    def scripted(model, loader, device, multi_label, use_amp):
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        assert len(loader.dataset) == 3  # the validation split, scored by this (only) rank
        return torch.tensor([float(next(correct)), 0.0, 10.0], dtype=torch.float64)

    monkeypatch.setattr(ddp, "validation_sums", scripted)
    model, info = ddp.ddp_finetune(cfg, paths, labels, dist_info=ddp.Dist(**ONE), augment=False)

    assert info["epochs_run"] == len(info["history"]) == len(states) == 4 < cfg.epochs
    assert [h["val_score"] for h in info["history"]] == pytest.approx([0.5, 0.9, 0.7, 0.6])
    assert info["best_val_score"] == pytest.approx(0.9)
    assert (info["train_size"], info["val_size"]) == (21, 3)
    restored = model.state_dict()
    assert any(not torch.equal(states[1][k], states[3][k]) for k in restored)  # training moved the weights
    assert all(torch.equal(restored[k], states[1][k]) for k in restored)  # and the best epoch's came back


@pytest.mark.parametrize("multi_label", [False, True])
def test_a_run_that_cannot_improve_stops_at_patience_and_reports_its_validation_like_train(tmp_path, multi_label):
    import torch

    from training.ml import ddp
    from training.ml.data import ImageManifestDataset, build_transform
    from training.ml.models import data_config
    from training.ml.train import _validate, split_train_val

    # A learning rate of ~0 and frozen BatchNorm statistics: the score soon stops moving. (The classifier starts at
    # zero, every class tied, so the first steps may break ties and move the accuracy once; then nothing moves.)
    cfg, paths, labels = tiny_finetune(tmp_path, epochs=5, patience=1, lr=1e-12, multi_label=multi_label)
    model, info = ddp.ddp_finetune(cfg, paths, labels, dist_info=ddp.Dist(**ONE), augment=False, bn="frozen")

    scores = [h["val_score"] for h in info["history"]]
    best = max(i for i in range(len(scores)) if scores[i] > max(scores[:i], default=-1.0) + 1e-4)
    # It stopped `patience` epochs after its last gain, before its epochs ran out, with the best epoch's weights.
    assert info["epochs_run"] == best + 1 + cfg.patience < cfg.epochs
    assert info["best_val_score"] == scores[best] == max(scores)
    assert {"val_acc", "val_loss", "train_loss"} <= set(info["history"][0])
    # The score is train._validate's on the same split.
    _, val_idx = split_train_val(labels, cfg.val_fraction, cfg.seed)
    targets = [torch.tensor([float(k in ls) for k in range(3)]) if multi_label else ls[0] for ls in labels]
    val_ds = ImageManifestDataset(
        [paths[i] for i in val_idx], [targets[i] for i in val_idx],
        build_transform(data_config(model), cfg.image_size, is_training=False, crop_pct=cfg.crop_pct),
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(val_ds, batch_size=8)
    assert _validate(model, loader, "cpu", multi_label, False)["val_score"] == pytest.approx(scores[best], abs=1e-6)

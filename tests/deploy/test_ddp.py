"""torchrun --nproc_per_node=2 -m training.ml.ddp (DDP over gloo on CPU) fine-tunes to the same weights as one
process with the same global batch, and writes a checkpoint the scoring code loads."""

import json
import os
import shutil
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


def make_round(tmp_path: Path, n: int = 32) -> Path:
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
            "lr": 1e-3,
            "drop_rate": 0.0,
            "num_workers": 0,
            "device": "cpu",
            "class_names": ["red", "green", "blue"],
            "seed": 3,
        },
        "labeled": labeled,
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "round.json"
    path.write_text(json.dumps(spec))
    return path


def run(cmd: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_two_ddp_processes_train_the_same_model_as_one_process(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not found")
    from safetensors.numpy import load_file

    from training.ml.checkpoint import load_checkpoint

    spec = make_round(tmp_path)
    common = ["--config", str(spec), "--bn", "frozen", "--no-augment"]
    run([sys.executable, "-m", "training.ml.ddp", *common, "--out", str(tmp_path / "single")], tmp_path)
    run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "training.ml.ddp", *common,
         "--out", str(tmp_path / "ddp")],
        tmp_path,
    )  # fmt: skip

    single = json.loads((tmp_path / "single" / "result.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert (single["world_size"], ddp["world_size"]) == (1, 2)
    assert not (tmp_path / "ddp" / ".rank1").exists()  # only rank 0 writes
    # The loss over the epoch is the mean over every image of every rank: the same as one process saw.
    for a, b in zip(single["history"], ddp["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)

    w1 = load_file(tmp_path / "single" / "checkpoint" / "model.safetensors")
    w2 = load_file(tmp_path / "ddp" / "checkpoint" / "model.safetensors")
    assert w1.keys() == w2.keys()
    classifier = "classifier.weight"
    moved = np.abs(w1[classifier]).mean()  # the freshly initialised classifier was trained
    diff = max(float(np.abs(w1[k].astype(np.float64) - w2[k]).max()) for k in w1 if w1[k].dtype.kind == "f")
    assert moved > 1e-3
    assert diff < 1e-4, f"DDP and single-process weights differ by {diff}"

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

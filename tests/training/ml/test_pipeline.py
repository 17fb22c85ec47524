"""A whole round on generated digit images: head mode, fine-tune smoke test, cold start, re-scoring, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file

from training.ml.config import RoundConfig
from training.ml.data import ImageManifestDataset, build_transform
from training.ml.models import create_backbone, data_config
from training.ml.pipeline import cold_start_priorities, run_round, score_pool

CLASSES = ["zero", "one", "seven"]


def split(digits):
    labeled = [(i, p, [c]) for i, p, c in digits if i % 1000 < 5]
    holdout = [(i, p, [c]) for i, p, c in digits if 5 <= i % 1000 < 9]
    pool = [(i, p) for i, p, c in digits if i % 1000 >= 9]
    return labeled, holdout, pool


def test_head_round_trains_evaluates_and_ranks_every_pool_item(digits, tmp_path):
    labeled, holdout, pool = split(digits)
    cfg = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES)
    stages = []
    result = run_round(
        cfg, labeled, holdout, pool, tmp_path / "cache", tmp_path / "ckpt",
        progress=lambda done, total, stage="": stages.append((stage, done / total)),
    )  # fmt: skip
    m = result.metrics
    assert m["n"] == len(holdout) == 12
    assert m["accuracy"] >= 0.75  # digits 0/1/7 are easy for ImageNet features even from 15 labels
    assert set(m["per_class"]) == set(CLASSES)
    assert m["train_size"] == 15
    assert 0 < m["pseudo_labeled"] <= m["pool_size"]  # the head also learned from pool items it is sure of
    assert {"embed", "train", "evaluate", "score"} <= {s for s, _ in stages}
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)
    # every pool item gets probabilities, uncertainty and a priority
    n = len(pool)
    assert result.pool_ids.tolist() == [i for i, _ in pool]
    assert result.pool_probs.shape == (n, 3)
    np.testing.assert_allclose(result.pool_probs.sum(1), 1.0, atol=1e-5)
    assert result.pool_uncertainty.shape == result.pool_priority.shape == (n,)
    assert len(np.unique(result.pool_priority)) == n
    assert result.embedding_dim == 1280
    # the checkpoint is a plain timm model that reproduces the pool probabilities
    cfg_json = json.loads((result.checkpoint_dir / "config.json").read_text())
    assert cfg_json["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert cfg_json["preprocessing"]["squash_aspect"] == 2.0  # elongated images squashed (imaging.shape)
    model = timm.create_model(cfg_json["architecture"], num_classes=cfg_json["num_classes"])
    model.load_state_dict(load_file(str(result.checkpoint_dir / "model.safetensors")))
    model.eval()
    dcfg = data_config(create_backbone("tf_efficientnet_lite0", "bundled"))
    ds = ImageManifestDataset([p for _, p in pool[:4]], None, build_transform(dcfg, 64, is_training=False))
    x = torch.stack([ds[i][0] for i in range(4)])
    # The default embeds an image with its mirror: the checkpoint says so, and averaging the plain model's logits
    # over the image and its mirror (the model card's recipe) reproduces the platform.
    assert cfg_json["preprocessing"]["flip_average"] is True
    with torch.inference_mode():
        probs = ((model(x) + model(x.flip(-1))) / 2).softmax(-1).numpy()
        unmirrored = model(x).softmax(-1).numpy()
    # cached embeddings are float16: agreement to a few 1e-3
    assert np.abs(probs - result.pool_probs[:4]).max() < 5e-3
    assert np.abs(unmirrored - result.pool_probs[:4]).max() > 5e-3

    # Re-scoring with the saved checkpoint gives the same ranking inputs, from the cache (no new forwards).
    scored = score_pool(result.checkpoint_dir, pool, tmp_path / "cache", cfg)
    np.testing.assert_allclose(scored.pool_probs, result.pool_probs, atol=1e-5)
    assert scored.pool_priority.shape == (n,)


def test_a_head_round_reads_the_pools_embeddings_from_the_store_once(digits, tmp_path, monkeypatch):
    from training.ml.embeddings import EmbeddingStore

    # Given a head round's labels, holdout and pool (a 100,000-item pool's embeddings are 500 MB in float32)
    labeled, holdout, pool = split(digits)
    reads = []
    real_get = EmbeddingStore.get

    def get(self, ids, *args, **kwargs):
        reads.append(len(ids))
        return real_get(self, ids, *args, **kwargs)

    monkeypatch.setattr(EmbeddingStore, "get", get)

    # When the round trains, evaluates and scores
    cfg = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES)
    result = run_round(cfg, labeled, holdout, pool, tmp_path / "cache", tmp_path / "ckpt")

    # Then it read the pool once (training and scoring share that copy), and still scored every pool item
    assert reads.count(len(pool)) == 1
    assert result.pool_probs.shape == (len(pool), 3)


def test_a_checkpoint_on_plain_embeddings_is_served_and_rescored_without_mirror_averaging(digits, tmp_path):
    # Projects created before mirror averaging (and projects that turn it off) keep their feature space: the
    # checkpoint records it, and re-scoring follows the checkpoint, not the caller's default.
    labeled, _holdout, pool = split(digits)
    plain = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES, flip_average=False)
    result = run_round(plain, labeled, [], pool, tmp_path / "cache", tmp_path / "ckpt")
    cfg_json = json.loads((result.checkpoint_dir / "config.json").read_text())
    assert cfg_json["preprocessing"]["flip_average"] is False
    model = timm.create_model(cfg_json["architecture"], num_classes=cfg_json["num_classes"])
    model.load_state_dict(load_file(str(result.checkpoint_dir / "model.safetensors")))
    dcfg = data_config(create_backbone("tf_efficientnet_lite0", "bundled"))
    ds = ImageManifestDataset([p for _, p in pool[:4]], None, build_transform(dcfg, 64, is_training=False))
    x = torch.stack([ds[i][0] for i in range(4)])
    with torch.inference_mode():
        probs = model.eval()(x).softmax(-1).numpy()
    assert np.abs(probs - result.pool_probs[:4]).max() < 5e-3

    default = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES)
    assert default.flip_average
    scored = score_pool(result.checkpoint_dir, pool, tmp_path / "cache", default)
    np.testing.assert_allclose(scored.pool_probs, result.pool_probs, atol=1e-5)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tf_efficientnet_lite0__bundled__64__px2__sq2"]


def test_bald_round_uses_mc_dropout(digits, tmp_path):
    labeled, _holdout, pool = split(digits)
    cfg = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES, strategy="bald", mc_samples=8)
    result = run_round(cfg, labeled, [], pool, tmp_path / "cache", tmp_path / "ckpt")
    assert result.metrics["n"] == 0
    assert (result.pool_uncertainty >= 0).all()
    assert result.pool_priority.shape == (len(pool),)


def test_cold_start_orders_the_whole_pool(digits, tmp_path):
    pool = [(i, p) for i, p, _ in digits]
    cfg = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES, selection_batch=3)
    ids, priority = cold_start_priorities(pool, tmp_path / "cache", cfg)
    assert ids.tolist() == [i for i, _ in pool]
    assert len(np.unique(priority)) == len(pool)
    first_three = ids[np.argsort(-priority)[:3]]
    # class-agnostic, yet the three most typical cluster representatives cover at least two digits
    assert len({i // 1000 for i in first_three}) >= 2


def test_finetune_one_epoch_smoke(digits, tmp_path):
    labeled, holdout, pool = split(digits)
    cfg = RoundConfig(
        backbone="resnet10t", weights="none", image_size=32, mode="finetune", epochs=1, batch_size=8,
        num_workers=0, class_names=CLASSES, strategy="diverse_margin",
    )  # fmt: skip
    result = run_round(cfg, labeled, holdout, pool, tmp_path / "cache", tmp_path / "ckpt")
    assert result.metrics["mode"] == "finetune"
    assert result.metrics["epochs_run"] == 1
    assert result.metrics["train_size"] + result.metrics["val_size"] == len(labeled)
    assert result.pool_probs.shape == (len(pool), 3)
    assert result.embedding_dim == 512
    assert (result.checkpoint_dir / "model.safetensors").is_file()


def test_bad_manifest_is_rejected_before_any_work(digits, tmp_path):
    labeled, holdout, pool = split(digits)
    cfg = RoundConfig(image_size=64, num_workers=0, class_names=CLASSES)
    with pytest.raises(ValueError, match="outside"):
        run_round(cfg, [(1, labeled[0][1], [7])], [], pool, tmp_path / "c", tmp_path / "o")
    with pytest.raises(ValueError, match="no labeled"):
        run_round(cfg, [], holdout, pool, tmp_path / "c", tmp_path / "o")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="strategy"):
        RoundConfig(strategy="nope")


def test_cli_writes_result_files(digits, tmp_path):
    from training.ml.launch import main

    labeled, holdout, pool = split(digits)
    spec = {
        "config": RoundConfig(image_size=64, num_workers=0, class_names=CLASSES).to_dict(),
        "labeled": labeled,
        "holdout": holdout,
        "pool": pool,
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(tmp_path / "out"),
    }
    (tmp_path / "round.json").write_text(json.dumps(spec))
    assert main(["--config", str(tmp_path / "round.json")]) == 0
    summary = json.loads((tmp_path / "out" / "result.json").read_text())
    assert summary["metrics"]["n"] == len(holdout)
    npz = np.load(tmp_path / "out" / "result.npz")
    assert npz["pool_priority"].shape == (len(pool),)

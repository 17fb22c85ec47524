"""Training rounds without training, for the tests of which version goes live: `train` runs a real round (enqueue,
execute, promotion, priorities) whose `run_round` returns the given holdout metrics and a checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labeling.models import Role, Split
from labeling.services.annotations import annotation_create
from stats.proportions import wilson_interval
from training.ml import pipeline
from training.models import RunMode, RunStatus, TrainingRun
from training.services.runs import training_run_enqueue, training_run_execute


def two_class_project(project_factory, label_class_factory, item_factory, member_of, settings):
    """A CPU project with classes zero and one, 6 labeled train items, 2 holdout items (the 2nd and 7th) and 4 open
    ones, for a round that does not train. Returns (project, classes)."""
    settings.LABELLOOP_TRAIN_DEVICE = "cpu"
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project = project_factory()
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(("zero", "one"))]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(8):
        item = item_factory(project=project, split=Split.HOLDOUT if i in (1, 6) else Split.TRAIN)
        annotation_create(item=item, user=annotator, class_ids=[classes[i % 2].pk])
    for _ in range(4):
        item_factory(project=project, split=Split.TRAIN)
    return project, classes


def holdout_metrics(correct: int, n: int) -> dict:
    """A single-label version's holdout metrics: `correct` of `n`, with its Wilson interval."""
    low, high = wilson_interval(correct, n)
    return {
        "n": n,
        "multi_label": False,
        "accuracy": correct / n,
        "intervals": {"level": 0.95, "n": n, "accuracy": {"low": low, "high": high, "method": "wilson"}},
    }


def fake_round(metrics: dict, tmp_path: Path, *, holdout: int | None = None):
    """run_round standing in for training: the given holdout metrics, a checkpoint folder, scores for the pool.
    `holdout`: the number of holdout items the round must be given."""

    def run_round(cfg, train, holdout_rows, pool, cache_dir, out_dir, progress):
        assert holdout is None or len(holdout_rows) == holdout
        checkpoint = tmp_path / "ckpt"
        checkpoint.mkdir(exist_ok=True)
        (checkpoint / "model.safetensors").write_bytes(b"weights")
        ids = np.array([row[0] for row in pool], dtype=np.int64)
        return pipeline.RoundResult(
            metrics=metrics, checkpoint_dir=checkpoint, device="cpu", pool_ids=ids,
            pool_probs=np.full((len(ids), 2), 0.5, dtype=np.float32),
            pool_uncertainty=np.linspace(0, 1, len(ids), dtype=np.float32),
            pool_priority=np.arange(len(ids), dtype=np.float32) + 100, embedding_dim=8,
            pool_random_ids=np.array([], dtype=np.int64),
        )  # fmt: skip

    return run_round


def train(project, metrics, tmp_path, monkeypatch, *, holdout: int | None = None) -> dict:
    """One round of `project` that ends with a version of these metrics; its summary."""
    monkeypatch.setattr(pipeline, "run_round", fake_round(metrics, tmp_path, holdout=holdout))
    run = training_run_enqueue(project=project, trigger="manual", mode=RunMode.HEAD, send=False)
    summary = training_run_execute(run_id=run.pk)
    assert summary["status"] == RunStatus.SUCCEEDED, TrainingRun.objects.get(pk=run.pk).error
    return summary

"""A fine-tune run of a project with gpus > 1 trains under torchrun (N gloo processes on a CPU box): the run
records its world size, the progress bar moves with rank 0's stages, a failing torchrun fails the run with its
log, and a run that stops being `running` stops the processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from labeling.models import Role
from training import services
from training.ml.config import RoundConfig
from training.models import ModelVersion, Prediction, RunStatus, TrainingRun
from training.services import torchrun
from training.services.artifacts import version_checkpoint_dir

from .loop_fixtures import digits_project, label_through_queue

pytestmark = pytest.mark.django_db

# resnet10t from scratch at 32 px, one epoch: the round is about the launch, not the model.
TINY_FINETUNE = {"num_workers": 0, "epochs": 1, "batch_size": 8, "score_batch_size": 64}


@pytest.fixture
def finetune_settings(settings):
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_FINETUNE
    settings.LABELLOOP_TRAIN_DEVICE = "cpu"  # gloo processes, GPU box or not
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600  # no heartbeat thread writes inside the test transaction
    return settings


def finetune_project(project_factory, member_of, *, gpus: int, n: int = 40, labels: int = 24):
    project, truth, classes = digits_project(
        project_factory, n=n, min_labels_to_train=10, training_mode="finetune", gpus=gpus, backbone="resnet10t",
        backbone_weights="none", image_size=32,
    )  # fmt: skip
    label_through_queue(project, member_of(project, Role.ANNOTATOR), truth, classes, labels)
    return project


@pytest.mark.slow
def test_a_two_gpu_project_trains_with_two_torchrun_processes(
    project_factory, member_of, finetune_settings, monkeypatch
):
    project = finetune_project(project_factory, member_of, gpus=2)
    project.al_strategy = "diverse_margin"  # the default, which draws part of each batch at random
    project.save(update_fields=["al_strategy"])
    run = services.training_run_enqueue(project=project, trigger="manual", send=False)
    seen: list[tuple[str, float]] = []
    results = []
    read_result = torchrun._read_result
    monkeypatch.setattr(torchrun, "_read_result", lambda out_dir: results.append(read_result(out_dir)) or results[-1])

    summary = services.training_run_execute(
        run_id=run.pk, on_progress=lambda done, total, stage="": seen.append((stage, done / total))
    )

    run.refresh_from_db()
    assert summary["status"] == RunStatus.SUCCEEDED, run.error
    assert (run.world_size, run.device, summary["world_size"]) == (2, "cpu x2 (gloo)", 2)
    version = ModelVersion.objects.get(project=project, active=True)
    assert version.run_id == run.pk
    assert version.metrics["world_size"] == 2  # rank 0's DDP trainer saw a process group of 2
    assert version.metrics["mode"] == "finetune"
    assert Prediction.objects.filter(model_version=version).count() == summary["pool"] > 0
    # The bar moved with rank 0's stages, relayed from the subprocess, and never went backwards.
    stages = [stage for stage, _ in seen]
    assert {"launch", "train", "score", "save", "predictions"} <= set(stages)
    train = [p for stage, p in seen if stage == "train"]
    assert 0.02 <= min(train) < max(train) <= 0.9
    assert [p for _, p in seen] == sorted(p for _, p in seen)
    out = Path(finetune_settings.LABELLOOP_DATA_ROOT) / "projects" / str(project.pk) / "runs" / str(run.pk)
    # The run folder keeps what the round did; its weights and pool arrays went once the storage had the
    # checkpoint (the version reads it from there) and the database the predictions.
    assert {p.name for p in out.iterdir()} == {"round.json", "torchrun.log", "result.json"}
    assert (version_checkpoint_dir(version=version) / "model.safetensors").is_file()
    # The batch's random draws travel in the result file and are the items the queue marks as drawn at random.
    from labeling.models import Item

    (result,) = results
    recorded = {int(i) for i in result.pool_random_ids}
    assert len(recorded) == round(0.1 * min(20, summary["pool"])) >= 1  # 10 % of the batch (here the whole pool)
    assert set(Item.objects.filter(project=project, picked_at_random=True).values_list("pk", flat=True)) == recorded


def test_a_failing_torchrun_fails_the_run_with_its_log(project_factory, member_of, finetune_settings, monkeypatch):
    project = finetune_project(project_factory, member_of, gpus=2, n=20, labels=12)
    script = "import sys; print('rank 1: CUDA error: out of memory', file=sys.stderr); sys.exit(3)"
    monkeypatch.setattr(torchrun, "torchrun_command", lambda **kw: [sys.executable, "-c", script])
    run = services.training_run_enqueue(project=project, trigger="manual", send=False)

    summary = services.training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert summary["status"] == run.status == RunStatus.FAILED
    assert "torchrun (2 cpu processes) exited with status 3" in run.error
    assert "rank 1: CUDA error: out of memory" in run.error
    assert run.world_size == 2
    assert not ModelVersion.objects.filter(project=project).exists()


def test_a_run_that_stops_running_stops_torchrun(project_factory, member_of, finetune_settings, monkeypatch, tmp_path):
    project = finetune_project(project_factory, member_of, gpus=2, n=20, labels=12)
    pid_file = tmp_path / "pid"
    script = (
        "import json, os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print(json.dumps({'stage': 'train', 'progress': 0.1}), flush=True)\n"
        "time.sleep(120)\n"
    )
    monkeypatch.setattr(torchrun, "torchrun_command", lambda **kw: [sys.executable, "-c", script])
    run = services.training_run_enqueue(project=project, trigger="manual", send=False)

    def cancel_once_training(done: int, total: int, stage: str = "") -> None:
        if stage == "train":  # what the reaper (or an admin) does to a run elsewhere
            TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)

    summary = services.training_run_execute(run_id=run.pk, on_progress=cancel_once_training)

    assert summary["status"] == "abandoned"
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not ModelVersion.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("gpus", "mode", "visible", "size", "label"),
    [
        (4, "finetune", 2, 2, "cuda x2 (nccl; 4 asked)"),
        (4, "finetune", 8, 4, "cuda x4 (nccl)"),
        (2, "finetune", 1, 1, "cuda (2 asked)"),
        (4, "head", 8, 1, "cuda"),  # a head round is one process: its cost is the embedding pass
        (1, "finetune", 8, 1, "cuda"),
    ],
)
def test_the_world_is_the_projects_gpus_clamped_to_the_visible_devices(
    project_factory, monkeypatch, gpus, mode, visible, size, label
):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    cfg = RoundConfig(mode=mode, device="cuda", class_names=["a", "b"])
    world = torchrun.round_world(project=project_factory(gpus=gpus), cfg=cfg)
    assert (world.size, world.label()) == (size, label)


def test_torchrun_is_the_venvs_with_a_standalone_rendezvous(tmp_path):
    world = torchrun.World(size=3, device="cpu", requested=3)
    command = torchrun.torchrun_command(world=world, config=tmp_path / "round.json", out_dir=tmp_path)
    assert command[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3"]
    assert command[5:7] == ["-m", "training.ml.launch"]
    assert command[command.index("--watch-pid") + 1] == str(os.getpid())

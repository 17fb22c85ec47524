"""`manage.py reclaim_disk`: an install that ran for months before rounds trimmed their run folders gets its disk
back in one command: weights in finished run folders, cached ONNX files, drift references and downloaded
checkpoints of versions nothing serves. What a version still loads from, and a run in flight, are kept."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from serving.selectors.models import version_cache_name
from training.models import ModelVersion, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

WEIGHTS = 1_000_000  # bytes of each fake model.safetensors


def _files(folder: Path, names: dict[str, int]) -> Path:
    for name, size in names.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x" * size)
    return folder


def _old(path: Path) -> None:
    then = time.time() - 2 * 3600
    os.utime(path, (then, then))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _reclaim(*args: str) -> dict:
    out = io.StringIO()
    call_command("reclaim_disk", *args, stdout=out, verbosity=0)
    return json.loads(out.getvalue())


def test_reclaim_disk_removes_the_copies_nothing_reads_and_keeps_the_rest(project_factory, settings, tmp_path):
    real = tmp_path / "disk"  # the data folder is reached through a link, as on many servers
    real.mkdir()
    (tmp_path / "data").symlink_to(real)
    settings.LABELLOOP_DATA_ROOT = tmp_path / "data"
    data = settings.LABELLOOP_DATA_ROOT
    project = project_factory()
    runs = data / "projects" / str(project.pk) / "runs"

    def run(status: str) -> TrainingRun:
        return TrainingRun.objects.create(project=project, status=status)

    def version(number: int, made_by: TrainingRun | None, artifact: str, active: bool = False) -> ModelVersion:
        return ModelVersion.objects.create(
            project=project, number=number, run=made_by, artifact_path=artifact, architecture="x", active=active
        )

    # Given a one-process run and a torchrun run whose checkpoints are in the storage, a version saved before
    # checkpoints went to the storage (it still loads from its run folder), and a run in flight
    one, multi, legacy, flying = run("succeeded"), run("succeeded"), run("succeeded"), run(RunStatus.RUNNING)
    _files(runs / str(one.pk), {"model.safetensors": WEIGHTS, "config.json": 10, "result.npz": 500})
    small = {"result.json": 10, "round.json": 10, "torchrun.log": 10}
    _files(runs / str(multi.pk), {"checkpoint/model.safetensors": WEIGHTS, "checkpoint/config.json": 10,
                                  "result.npz": 500, **small})  # fmt: skip
    _files(runs / str(legacy.pk), {"checkpoint/model.safetensors": WEIGHTS, "checkpoint/config.json": 10})
    _files(runs / str(flying.pk), {"checkpoint/model.safetensors": WEIGHTS, "result.npz": 500})
    version(1, one, f"models/{project.pk}/run-{one.pk}-aaaaaaaaaaaa")
    version(2, legacy, str(real / "projects" / str(project.pk) / "runs" / str(legacy.pk) / "checkpoint"))
    active = version(3, multi, f"models/{project.pk}/run-{multi.pk}-bbbbbbbbbbbb", active=True)
    # and caches: the served ONNX of the active version and of a deleted one, drift references of both, and
    # downloaded checkpoints of the active version and of version 1, all last used two hours ago
    gone = "999-20250101T000000000000"
    for name in (version_cache_name(version_pk=active.pk), gone):
        _old(_files(data / "serving-cache" / name, {"model.onnx": 2000, "config.json": 10}))
        _old(_files(data / "drift-reference", {f"{name}.npz": 300}) / f"{name}.npz")
    downloads = data / "storage-cache" / "models" / str(project.pk)
    for key in (f"run-{one.pk}-aaaaaaaaaaaa", f"run-{multi.pk}-bbbbbbbbbbbb"):
        _old(_files(downloads / key, {"model.safetensors": WEIGHTS}))
    _files(data / "storage-cache" / "items" / "ab", {"cd.png": 100})  # an image a worker cached
    before = _tree(data)

    # When the administrator looks first
    dry = _reclaim("--dry-run")

    # Then it says what would go and removes nothing
    assert _tree(data) == before
    assert dry["run_folders"] == {"folders": 4, "trimmed": 2, "bytes": 2 * (WEIGHTS + 10 + 500), "kept": 2}
    assert dry["serving_cache"] == {"entries": 1, "bytes": 2010}
    assert dry["drift_reference"] == {"entries": 1, "bytes": 300}
    assert dry["downloaded_checkpoints"] == {"entries": 1, "bytes": WEIGHTS}

    # When it reclaims
    done = _reclaim()

    # Then exactly that went, and everything a version, a running round or a later check reads is still there
    assert {k: v for k, v in done.items() if k != "dry_run"} == {k: v for k, v in dry.items() if k != "dry_run"}
    gone_files = before - _tree(data)
    assert gone_files == {
        f"projects/{project.pk}/runs/{one.pk}/model.safetensors", f"projects/{project.pk}/runs/{one.pk}/config.json",
        f"projects/{project.pk}/runs/{one.pk}/result.npz",
        f"projects/{project.pk}/runs/{multi.pk}/checkpoint/model.safetensors",
        f"projects/{project.pk}/runs/{multi.pk}/checkpoint/config.json",
        f"projects/{project.pk}/runs/{multi.pk}/result.npz",
        f"serving-cache/{gone}/model.onnx", f"serving-cache/{gone}/config.json", f"drift-reference/{gone}.npz",
        f"storage-cache/models/{project.pk}/run-{one.pk}-aaaaaaaaaaaa/model.safetensors",
    }  # fmt: skip
    assert (runs / str(multi.pk) / "torchrun.log").is_file()  # what the round did stays readable
    # and a second pass finds nothing left to reclaim
    assert _reclaim()["bytes"] == 0


def test_reclaim_disk_removes_embedding_folders_of_older_image_rules_once_a_project_moved_on(
    project_factory, settings, tmp_path
):
    """After the pixel rule (imaging/pixels.py) and the squash rule (imaging/shape.py) changed, a project's next
    round wrote a new embedding folder and the old ones were read by nothing: 2.6 MB per 1,000 items each (Lite0)."""
    settings.LABELLOOP_DATA_ROOT = tmp_path / "data"
    cache = lambda project: settings.LABELLOOP_DATA_ROOT / "projects" / str(project.pk) / "cache"  # noqa: E731

    def space(project) -> str:
        return f"{project.backbone}__bundled__{project.image_size}" + ("__flipavg" if project.flip_average else "")

    # Given a project that ran a round under the current rules, with the folders of both older rules and of
    # another image size it used before (another feature space, not an older rule)
    moved = project_factory(slug="moved")
    base = space(moved)
    current, older = f"{base}__px2__sq2", [base, f"{base}__px2"]
    other_size = base.replace(f"__{moved.image_size}", "__224")
    for name in (current, *older, other_size):
        _files(cache(moved) / name, {"1-a.f16.npy": 4000, "1-a.ids.npy": 100})
    # one that has not run under them yet (its old folder is what its next round copies from), and one whose
    # round is running now
    waiting, running = project_factory(slug="waiting"), project_factory(slug="running")
    _files(cache(waiting) / f"{space(waiting)}__px2", {"1-a.f16.npy": 4000, "1-a.ids.npy": 100})
    for name in (f"{space(running)}__px2__sq2", f"{space(running)}__px2"):
        _files(cache(running) / name, {"1-a.f16.npy": 4000, "1-a.ids.npy": 100})
    TrainingRun.objects.create(project=running, status=RunStatus.RUNNING)
    before = _tree(settings.LABELLOOP_DATA_ROOT)

    dry = _reclaim("--dry-run")
    assert _tree(settings.LABELLOOP_DATA_ROOT) == before
    assert dry["embedding_folders"] == {"projects": 3, "folders": 2, "bytes": 2 * 4100, "skipped_in_flight": 1}

    done = _reclaim()
    assert done["embedding_folders"] == dry["embedding_folders"]
    assert sorted(p.name for p in cache(moved).iterdir()) == sorted([current, other_size])
    assert before - _tree(settings.LABELLOOP_DATA_ROOT) == {
        f"projects/{moved.pk}/cache/{name}/{file}" for name in older for file in ("1-a.f16.npy", "1-a.ids.npy")
    }
    assert _reclaim()["embedding_folders"]["folders"] == 0

"""What a finished training run leaves on this machine's disk, and how the copies nothing reads are removed.

A round writes its checkpoint and pool arrays to its run folder (LABELLOOP_DATA_ROOT/projects/<id>/runs/<run id>/),
uploads the checkpoint to the storage and writes the predictions to the database; from then on the run folder's
copy is read by nothing. `run_folder_trim` removes it at the end of each round; `run_folders_trim` does the same
for the run folders of older installs (`manage.py reclaim_disk`). A folder a version's artifact_path still points
at (versions saved before checkpoints went to the storage) is never touched, nor is a run still in flight.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from training.constants import CONFIG_FILE, WEIGHTS_FILE, data_root
from training.models import IN_FLIGHT, ModelVersion, TrainingRun

POOL_ARRAYS = "result.npz"


def _checkpoint_files(folder: Path) -> list[Path]:
    return [folder / WEIGHTS_FILE, folder / CONFIG_FILE] if (folder / WEIGHTS_FILE).is_file() else []


def _remove(paths: list[Path], *, dry_run: bool) -> int:
    """Bytes of the files that exist among `paths`, removed unless `dry_run`."""
    freed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            freed += path.stat().st_size
            if not dry_run:
                path.unlink()
    return freed


def run_folder_trim(*, out_dir: Path, checkpoint_dir: Path, dry_run: bool = False) -> int:
    """Remove a finished round's weights and pool arrays from its run folder; returns the bytes freed. The small
    files (round.json, result.json, torchrun.log) stay, to say what the round did."""
    if not checkpoint_dir.is_relative_to(out_dir):  # never remove files the run folder does not own
        return 0
    return _trim(out_dir, [checkpoint_dir], dry_run=dry_run)


def _trim(out_dir: Path, checkpoint_dirs: list[Path], *, dry_run: bool) -> int:
    paths = [path for folder in checkpoint_dirs for path in _checkpoint_files(folder)]
    freed = _remove([*paths, out_dir / POOL_ARRAYS], dry_run=dry_run)
    if not dry_run:
        for folder in [*checkpoint_dirs, out_dir]:
            with contextlib.suppress(OSError):  # only when nothing else is left in it
                folder.rmdir()
    return freed


def _version_folders() -> list[Path]:
    """Local folders that versions saved before the storage held checkpoints still load from."""
    folders, projects = [], (data_root() / "projects").resolve()
    for path in ModelVersion.objects.values_list("artifact_path", flat=True).iterator():
        local = (Path(path) if Path(path).is_absolute() else data_root() / path).resolve()  # as the runs are named
        if local.is_relative_to(projects):
            folders.append(local)
    return folders


def run_folders_trim(*, dry_run: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    """Trim every finished run's folder on this machine; returns {"folders", "trimmed", "bytes", "kept"}."""
    runs = sorted(data_root().resolve().glob("projects/*/runs/*"))
    runs = [r for r in runs if r.is_dir() and r.name.isdigit()]
    in_flight = set(TrainingRun.objects.filter(status__in=IN_FLIGHT).values_list("pk", flat=True))
    still_read = _version_folders()
    trimmed = kept = freed = 0
    for n, folder in enumerate(runs, 1):
        if int(folder.name) in in_flight or any(v == folder or v.is_relative_to(folder) for v in still_read):
            kept += 1
        else:
            bytes_ = _trim(folder, [folder / "checkpoint", folder], dry_run=dry_run)  # torchrun's, or one process's
            trimmed += bytes_ > 0
            freed += bytes_
        if progress:
            progress(n, len(runs))
    return {"folders": len(runs), "trimmed": trimmed, "bytes": freed, "kept": kept}

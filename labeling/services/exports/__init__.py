"""Writes for dataset exports: build a zip (ImageFolder, CSV, JSONL or Hugging Face imagefolder) with a
manifest.json, store it under LABELLOOP_DATA_ROOT/exports (or the `exports` storage when configured),
and track it as a Job that the UI, the API and the management command share.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import shutil
import subprocess
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, InvalidStorageError, Storage, default_storage, storages
from django.db import transaction
from django.utils import timezone

from labeling.constants import Progress
from labeling.models import Job, JobKind, JobStatus, Project
from labeling.selectors.exports import (
    FORMATS,
    ExportFilters,
    ExportPlan,
    dataset_hash,
    export_filters_validate,
    export_is_expired,
    export_jobs_abandoned,
    export_jobs_past_ttl,
    export_plan,
    export_ttl,
)
from labeling.selectors.media import media_query
from labeling.services.dispatch import task_send_on_commit
from labeling.services.exports.csv_safe import csv_dict
from labeling.services.exports.nothing_to_export import dataset_export_refuse_empty
from labeling.services.job_limits import job_create_bounded
from labeling.services.jobs import job_claim, job_finish, job_progress

logger = logging.getLogger(__name__)

HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry no export time: same labels, same image bytes


def export_storage() -> Storage:
    """The `exports` storage if settings.STORAGES names one (S3, ...), else LABELLOOP_DATA_ROOT/exports."""
    try:
        return storages["exports"]
    except InvalidStorageError:
        return FileSystemStorage(location=Path(settings.LABELLOOP_DATA_ROOT) / "exports")


@functools.cache
def code_version() -> str:
    """`git describe` of the running code when it is a git checkout, else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as fh:
            return "labelloop " + tomllib.load(fh)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def manifest_build(*, plan: ExportPlan, fmt: str, created_at=None) -> dict:
    project = plan.project
    return {
        "format": fmt,
        "dataset_hash": plan.dataset_hash,
        "project": {"slug": project.slug, "name": project.name, "task_type": project.task_type},
        "created_at": (created_at or timezone.now()).isoformat(),
        "code_version": code_version(),
        "filters": plan.filters.as_dict(),
        "counts": plan.counts(),
        "classes": [
            {"index": c.index, "id": c.id, "name": c.name, "path": c.path, "folder": c.folder} for c in plan.classes
        ],
        # torchvision's ImageFolder assigns indices in sorted folder order; these match it.
        "class_map": {c.folder: c.index for c in plan.classes},
        "class_map_note": "ImageFolder's sorted folder order of this export's classes, not a model's output order (a "
        "model export's config.json class_names is that): match classes by path, never by index.",
        "splits": {
            "test": "items of the project's holdout split (never chosen by active learning)",
            "val": f"{plan.filters.val_fraction:.0%} of the train split, chosen by the image's sha256",
        },
        "hash_definition": "sha256 over sorted lines '<item sha256>\\t<JSON sorted class paths>'",
    }


def _imagefolder_note(plan: ExportPlan) -> dict:
    """Every split holds every class's folder, so that torchvision gives each class the same index in each split
    (class_map); a split with no image of a class keeps its folder empty, which torchvision's ImageFolder refuses
    unless told: the manifest names those folders and the call that loads them."""
    filled = {(row.split, plan.class_by_id[row.class_ids[0]].folder) for row in plan.rows}
    empty = [f"{s}/{c.folder}" for s in ("train", "val", "test") for c in plan.classes if (s, c.folder) not in filled]
    return {
        "load": "torchvision.datasets.ImageFolder(f'{root}/{split}', allow_empty=True)",
        "empty_folders": empty,
    }


def _row_record(plan: ExportPlan, row, *, media_prefix: str) -> dict:
    by_id = plan.class_by_id
    classes = [by_id[c] for c in row.class_ids]
    record = {
        "item_id": row.item_id,
        "file_name": row.file_name,
        "split": row.split,
        "sha256": row.sha256,
        "original_name": row.original_name,
        "width": row.width,
        "height": row.height,
        "source": row.source,
        "annotator_count": row.annotator_count,
        "media_url": f"{media_prefix}{row.item_id}/original/{media_query(row.sha256)}",
    }
    if plan.project.is_multi_label:
        record["labels"] = [c.path for c in classes]
        record["label_indices"] = [c.index for c in classes]
    else:
        record["label"] = classes[0].path
        record["label_index"] = classes[0].index
    return record


def _writestr(zf: zipfile.ZipFile, name: str, data: str | bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _add_dir(zf: zipfile.ZipFile, name: str) -> None:
    info = zipfile.ZipInfo(name.rstrip("/") + "/", date_time=_FIXED_TIME)
    info.external_attr = (0o40755 << 16) | 0x10
    zf.writestr(info, b"")


def _copy_image(zf: zipfile.ZipFile, arcname: str, storage_name: str) -> None:
    """Images are already compressed: store them as-is (fast, and byte-identical to the original)."""
    info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    with default_storage.open(storage_name, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)


def dataset_export_validate(*, project: Project, fmt: str, filters: ExportFilters | None = None) -> None:
    """Raise ValidationError (clear message) for a format or filters that cannot apply to this project."""
    if filters is not None:
        export_filters_validate(project=project, filters=filters)
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if fmt == "imagefolder" and project.is_multi_label:
        raise ValidationError("ImageFolder holds one class per image; this project is multi-label: use csv, jsonl, hf.")


def dataset_export_write(
    *, project: Project, fmt: str, filters: ExportFilters, progress: Progress | None = None, errors: list | None = None
) -> dict:
    """Build the export zip and store it. Returns {files, bytes, items, dataset_hash, format, manifest}.

    A missing original is reported in `errors` and left out (the manifest and hash describe what is in the zip).
    """
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if fmt == "imagefolder" and project.is_multi_label:
        raise ValidationError(
            "ImageFolder holds one class per image; this project is multi-label: use csv, jsonl or hf."
        )
    plan = export_plan(project=project, filters=filters)
    errors = errors if errors is not None else []
    total = len(plan.rows)
    if progress:
        progress(0, total)
    media_prefix = f"/p/{project.slug}/media/"
    created_at = timezone.now()
    with tempfile.NamedTemporaryFile(prefix="labelloop-export-", suffix=".zip", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        kept = []
        with zipfile.ZipFile(tmp_path, "w", allowZip64=True) as zf:
            if fmt == "imagefolder":
                for split in ("train", "val", "test"):
                    for c in plan.classes:
                        _add_dir(zf, f"{split}/{c.folder}")
            by_id = plan.class_by_id
            metadata: dict[str, list[str]] = {s: [] for s in HF_SPLITS.values()}
            text_rows: list[dict] = []
            step = max(1, min(500, total // 100 or 1))
            for done, row in enumerate(plan.rows, start=1):
                try:
                    if fmt == "imagefolder":
                        _copy_image(
                            zf, f"{row.split}/{by_id[row.class_ids[0]].folder}/{row.file_name}", row.storage_name
                        )
                    elif fmt == "hf":
                        _copy_image(zf, f"{HF_SPLITS[row.split]}/{row.file_name}", row.storage_name)
                except (FileNotFoundError, OSError) as exc:
                    errors.append({"name": row.original_name, "reason": f"original file unreadable: {exc}"})
                    continue
                kept.append(row)
                if fmt == "hf":
                    entry = {"file_name": row.file_name, "item_id": row.item_id}
                    if project.is_multi_label:
                        entry["labels"] = [by_id[c].path for c in row.class_ids]
                    else:
                        entry["label"] = by_id[row.class_ids[0]].path
                    metadata[HF_SPLITS[row.split]].append(json.dumps(entry, ensure_ascii=False))
                elif fmt in ("csv", "jsonl"):
                    text_rows.append(_row_record(plan, row, media_prefix=media_prefix))
                if progress and (done % step == 0 or done == total):
                    progress(done, total)
            if len(kept) != len(plan.rows):
                # Recompute hash and counts over what is really in the zip.
                plan.rows = kept
                paths = {c.id: c.path for c in plan.classes}
                pairs = ((r.sha256, r.class_ids) for r in kept)
                plan.dataset_hash = dataset_hash(pairs, paths=paths, multi_label=project.is_multi_label)
            if fmt == "hf":
                for split, lines in metadata.items():
                    if lines:
                        _writestr(zf, f"{split}/metadata.jsonl", "\n".join(lines) + "\n")
            elif fmt == "jsonl":
                _writestr(zf, "labels.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in text_rows))
            elif fmt == "csv":
                _writestr(zf, "labels.csv", _csv_text(text_rows, multi=project.is_multi_label))
            manifest = manifest_build(plan=plan, fmt=fmt, created_at=created_at)
            if fmt == "imagefolder":
                manifest["imagefolder"] = _imagefolder_note(plan)
            manifest["errors"] = errors[:1000]
            _writestr(zf, "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        stamp = created_at.strftime("%Y%m%d-%H%M%S")
        key = f"{project.slug}/dataset-{project.slug}-{fmt}-{stamp}-{plan.dataset_hash[:8]}.zip"
        storage = export_storage()
        with tmp_path.open("rb") as fh:
            key = storage.save(key, File(fh))
        size = storage.size(key)
    finally:
        tmp_path.unlink(missing_ok=True)
    return {
        "format": fmt,
        "item_count": len(plan.rows),
        "bytes": size,
        "dataset_hash": plan.dataset_hash,
        "files": [key],
        "manifest": manifest,
    }


def _csv_text(rows: list[dict], *, multi: bool) -> str:
    label_cols = ["labels", "label_indices"] if multi else ["label", "label_index"]
    columns = ["item_id", "file_name", "split", *label_cols, "sha256", "original_name", "width", "height"]
    columns += ["source", "annotator_count", "media_url"]
    buffer = io.StringIO()
    # CRLF (RFC 4180): the csv module then quotes any cell holding \r or \n, which cannot start a new row.
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        if multi:
            row = {**row, "labels": "|".join(row["labels"]), "label_indices": "|".join(map(str, row["label_indices"]))}
        writer.writerow(csv_dict(row))
    return buffer.getvalue()


def dataset_export_start(*, project: Project, user, fmt: str, filters: ExportFilters) -> Job:
    """Validate, then create the export Job and enqueue it after commit, or return the identical export already
    queued or running (`job.coalesced`). Bad input, or filters that leave no item (nothing_to_export), raises
    ValidationError and a user or project at its limit JobLimitReached (labeling.services.job_limits); all create
    nothing."""
    dataset_export_validate(project=project, fmt=fmt, filters=filters)
    dataset_export_refuse_empty(project=project, filters=filters)
    job = job_create_bounded(
        project=project,
        kind=JobKind.EXPORT_DATASET,
        user=user,
        inputs={"format": fmt, "filters": filters.as_dict()},
    )
    if not job.coalesced:
        # broker down: the job ends failed with the reason instead of staying queued forever
        task_send_on_commit("labeling.tasks.dataset_export_task", job.pk, job_id=job.pk)
    return job


def dataset_export_run(*, job_id: int, progress: Progress | None = None) -> dict:
    """Run an export Job (from the task or the command). Safe to call twice: a finished job is not redone."""
    job = job_claim(job_id=job_id, message="Collecting labels")
    if job is None:
        return Job.objects.get(pk=job_id).result
    if delay := float(getattr(settings, "LABELLOOP_DEBUG_EXPORT_SLEEP", 0) or 0):
        time.sleep(delay)  # test hook only: an export slow enough to keep others queued behind it

    def report(done: int, total: int) -> None:
        job_progress(job=job, done=done, total=total, message=f"Writing {done} / {total}")
        if progress:
            progress(done, total)

    try:
        result = dataset_export_write(
            project=job.project,
            fmt=job.params["format"],
            filters=ExportFilters.from_dict(job.params.get("filters", {})),
            progress=report,
            errors=job.errors,
        )
    except ValidationError as exc:
        job_finish(job=job, error="; ".join(exc.messages))
        return job.result
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        job_finish(job=job, error=f"Export failed: {exc}")
        raise
    summary = {k: result[k] for k in ("format", "item_count", "bytes", "dataset_hash", "files")}
    job.message = "Done"  # not the last "Writing n / n" (a finished model export and search say "Done" too)
    job_finish(job=job, result=summary)
    return summary


class ExportExpired(FileNotFoundError):
    """The job's file was deleted after LABELLOOP_EXPORT_TTL_HOURS (HTTP 410 Gone); start the job again."""


def export_job_file(*, job: Job) -> tuple[File, str]:
    """Open the stored file of a finished export or inference job -> (file, download name).

    Raises ExportExpired once the file is past LABELLOOP_EXPORT_TTL_HOURS, FileNotFoundError if there is none.
    """
    if export_is_expired(job):
        ttl = export_ttl()
        kept = f" after {ttl.total_seconds() / 3600:g} hours" if ttl else ""
        raise ExportExpired(f"This file expired and was deleted{kept}. Start the job again for a new one.")
    files = (job.result or {}).get("files") or []
    if job.status != JobStatus.SUCCEEDED or not files:
        raise FileNotFoundError("This job has no file to download.")
    return export_storage().open(files[0], "rb"), files[0].rsplit("/", 1)[-1]


def export_files_expire(*, now=None) -> dict:
    """Delete the files of export and inference jobs past LABELLOOP_EXPORT_TTL_HOURS and mark each job expired
    (result.expired_at; its file keys move to result.expired_files), and fail jobs whose task was lost.

    Run by the periodic `export_files_expire_task` (housekeeping queue). Safe to run twice or concurrently: each
    job is re-read under a row lock, and deleting a file already gone is not an error.
    """
    now = now or timezone.now()
    storage = export_storage()
    expired = deleted = 0
    for job_id in list(export_jobs_past_ttl(now=now).values_list("pk", flat=True)):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            result = dict(job.result or {})
            if result.get("expired_at"):
                continue
            files = list(result.get("files") or [])
            for key in files:
                try:
                    storage.delete(key)
                    deleted += 1
                except OSError:  # gone already, or the bucket refused: the job still stops offering it
                    logger.warning("could not delete expired export file %s of job %s", key, job_id, exc_info=True)
            result.update(expired_at=now.isoformat(), expired_files=files, files=[])
            job.result = result
            job.save(update_fields=["result"])
            expired += 1
    abandoned = 0
    for job in export_jobs_abandoned(now=now):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job.pk)
            if job.finished:
                continue
            job_finish(job=job, error="No worker finished this job in time (its task was lost). Start it again.")
            abandoned += 1
    if expired or abandoned:
        logger.info("export clean-up: %s jobs expired (%s files deleted), %s abandoned", expired, deleted, abandoned)
    return {"expired": expired, "deleted": deleted, "abandoned": abandoned}

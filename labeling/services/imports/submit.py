"""Creating import jobs: browser uploads staged in a per-user folder, server folders, and queueing the task."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from labeling.constants import file_name_cleaned
from labeling.models import Job, JobKind, JobStatus, Project
from labeling.services.dispatch import task_send
from labeling.services.imports.run import staging_remove
from labeling.services.imports.sources import is_junk, label_csv_text
from labeling.services.imports.validation import binary_size
from labeling.services.jobs import job_create, job_finish

STAGING_TOKEN = re.compile(r"upload-[A-Za-z0-9_]{4,40}")
BATCH_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
CSV_MAX_BYTES = 50 * 1024 * 1024
DRIVE = re.compile(r"^[A-Za-z]:")


# A file whose name holds a backslash (Linux and macOS allow one) is not imported, and the job names it with this
# reason; the rest of the upload goes on. Windows reads a backslash as a folder separator, so the name would mean
# another path there (an ImageFolder export, a Windows user's unzip).
BACKSLASH_REFUSED = (
    "its name holds a backslash (\\), which Windows reads as a folder separator: rename it without one and upload it "
    "again"
)


def _name_problem(name: str) -> str | None:
    """Why a relative upload path refuses its whole upload, or None. What the import page sends (webkitRelativePath,
    or the folders walked from a drop: "pets/chat noir/1.jpg") passes: "/" between folders, no "..", nothing absolute
    (read with "\\" as a separator too, as Windows would). A backslash alone refuses only its own file (staging)."""
    if "\x00" in name:
        return "holds a NUL character"
    if name.startswith(("/", "\\")) or DRIVE.match(name):
        return "is an absolute path: give the path relative to the folder uploaded"
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        return "goes up a folder (..)"
    if not name.strip() or not parts[-1].strip():
        return "has no file name"
    return None


def upload_names_check(*, names: list[str]) -> None:
    """Refuse relative upload paths that would leave the upload (`..`, absolute) or hold a NUL: a ValidationError
    names each one by its index and name, and nothing is staged."""
    problems = [f"names[{index}] {name!r} {why}." for index, name in enumerate(names) if (why := _name_problem(name))]
    if problems:
        raise ValidationError(problems)


def _staging_root(*, project: Project, user) -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT) / "staging" / str(project.pk) / str(user.pk)


def staging_dir_create(*, project: Project, user) -> Path:
    """A fresh folder for files uploaded through the browser; the job deletes it when it finishes.

    Web and worker processes must share LABELLOOP_DATA_ROOT (a volume in docker compose).
    """
    root = _staging_root(project=project, user=user)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=root))


def staging_dir_get(*, project: Project, user, token: str) -> Path:
    """The staging folder named by `token`, only if this user started it in this project."""
    if not STAGING_TOKEN.fullmatch(token or ""):
        raise ValidationError("Unknown upload.")
    directory = _staging_root(project=project, user=user) / token
    if not directory.is_dir():
        raise ValidationError("Unknown or finished upload.")
    return directory


def staging_dirs_sweep(*, older_than_hours: float | None = None) -> int:
    """Delete browser-upload folders that no import job holds and nobody touched for `older_than_hours`
    (LABELLOOP_STAGING_TTL_HOURS): uploads a user started and never submitted. Returns how many were removed.

    A folder named by a queued or running import job is kept whatever its age; a finished job removes its own.
    """
    hours = settings.LABELLOOP_STAGING_TTL_HOURS if older_than_hours is None else older_than_hours
    base = Path(settings.LABELLOOP_DATA_ROOT) / "staging"
    if hours <= 0 or not base.is_dir():
        return 0
    held = {
        str(Path(p["staging_dir"]).resolve())
        for p in Job.objects.filter(kind=JobKind.IMPORT, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .exclude(params__staging_dir=None)
        .values_list("params", flat=True)
        if (p or {}).get("staging_dir")
    }
    cutoff = time.time() - hours * 3600
    removed = 0
    for directory in base.glob("*/*/upload-*"):
        if not directory.is_dir() or str(directory.resolve()) in held:
            continue
        newest = max([directory.stat().st_mtime, *(f.stat().st_mtime for f in directory.iterdir())])
        if newest < cutoff:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


def _oversized_reason(name: str, size: str | int | None) -> str:
    """The refusal of a file the browser did not send for its size, in the words of the server's own size refusal."""
    limit = settings.LABELLOOP_MAX_ZIP_BYTES if name.lower().endswith(".zip") else settings.LABELLOOP_MAX_UPLOAD_BYTES
    try:
        size = int(size)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        size = -1
    if size <= limit:  # no size given (an older page): the limit alone
        return f"file is over the {binary_size(limit)} upload size limit; not uploaded"
    return f"file is {binary_size(size)}, over the {binary_size(limit)} limit; not uploaded"


def staged_uploads_add(
    *,
    directory: Path,
    uploads: list,
    names: list[str] | None = None,
    oversized: list[str] | None = None,
    oversized_sizes: list[str] | None = None,
    batch: str = "",
) -> int:
    """Save browser uploads into a staging folder and note them in its manifest; returns how many were staged.

    Images over LABELLOOP_MAX_UPLOAD_BYTES (or zips over LABELLOOP_MAX_ZIP_BYTES) are not kept: they are
    recorded as rejections. `oversized` names files the browser already refused to send for that reason
    (`oversized_sizes`: their sizes in bytes, same order). A hostile relative path in `names` refuses the whole batch
    before anything is written (upload_names_check); a name with a backslash is recorded as a rejection.

    `batch` is the page's key for this batch: a batch sent again under a key the folder has already taken (its answer
    was lost on the way back, and the page retried) stages nothing a second time and answers as the first time did.
    The manifest is the record of what is staged: files written by a request that fails before it is appended are
    not part of the upload (and go with the folder).
    """
    if batch and not BATCH_KEY.fullmatch(batch):
        raise ValidationError("Bad batch key.")
    if names:
        upload_names_check(names=names)
    staged = 0
    lines = []
    sizes = list(oversized_sizes or [])
    for index, name in enumerate(oversized or []):
        size = sizes[index] if index < len(sizes) else None
        lines.append({"name": name[:500], "reason": _oversized_reason(name, size)})
    # Browsers strip folders from multipart file names; `names` carries the relative paths when known.
    names = names if names and len(names) == len(uploads) else [u.name for u in uploads]
    for upload, given in zip(uploads, names, strict=True):
        if "\\" in (given or ""):
            lines.append({"name": given[:500], "reason": BACKSLASH_REFUSED})
            continue
        parts = (given or upload.name or "").replace("\\", "/").split("/")
        name = "/".join(p for p in parts if p not in ("", ".", ".."))[:500] or "unnamed"
        if is_junk(name.split("/")):  # .DS_Store, __MACOSX/…, ._* from a dropped folder: not images
            continue
        lower = name.lower()
        kind = "zip" if lower.endswith(".zip") else "csv" if lower.endswith(".csv") else "file"
        limit = {"zip": settings.LABELLOOP_MAX_ZIP_BYTES, "csv": CSV_MAX_BYTES}.get(
            kind, settings.LABELLOOP_MAX_UPLOAD_BYTES
        )
        if upload.size > limit:
            lines.append({"name": name, "reason": f"file is {binary_size(upload.size)}, over the "
                          f"{binary_size(limit)} limit"})  # fmt: skip
            continue
        suffix = {"zip": ".zip", "csv": ".csv"}.get(kind, "")
        target = directory / f"{uuid.uuid4().hex}{suffix}"
        temporary = getattr(upload, "temporary_file_path", None)
        if temporary is not None:
            shutil.move(temporary(), target)  # large uploads: already on disk, no second copy
        else:
            with open(target, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
        lines.append({"type": kind, "path": target.name, "name": name})
        staged += 1
    # One request at a time decides whether its batch key is new and appends to the manifest: the first try of a
    # batch may still be running on the server when the page's retry arrives.
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = directory / f".batch-{batch}"
        if batch and done.exists():
            for line in lines:  # this batch is already staged: drop the second copy
                if "path" in line:
                    (directory / line["path"]).unlink(missing_ok=True)
            return int(done.read_text() or 0)
        with open(directory / "manifest.jsonl", "a", encoding="utf-8") as manifest:
            for line in lines:
                if "reason" in line:  # a refused file is named as imported ones are (imports.collect says why)
                    line["name"] = file_name_cleaned(line["name"])
                manifest.write(json.dumps(line, ensure_ascii=False) + "\n")
        if batch:
            done.write_text(str(staged))
    return staged


def staged_job_get(*, project: Project, user, token: str) -> Job | None:
    """The import job already made from the staging folder named by `token` (the page's request to start the import
    reached the server but its answer did not come back, and the page asked again), or None."""
    if not STAGING_TOKEN.fullmatch(token or ""):
        return None
    directory = str(_staging_root(project=project, user=user) / token)
    return Job.objects.filter(project=project, kind=JobKind.IMPORT, params__staging_dir=directory).first()


def import_job_from_staging(
    *, project: Project, user, directory: Path, labels_from_folders: bool = False, dropped_folder: str | None = None
) -> Job:
    """Turn a staging folder into a queued import job (CSV files in it become the labels CSV). `dropped_folder`: the
    folder the import page says was dropped or picked, whose name the browser put before every path (folder_classes)."""
    manifest = directory / "manifest.jsonl"
    rows = []
    if manifest.exists():
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    sources = [{"type": r["type"], "path": str(directory / r["path"]), "name": r["name"]}
               for r in rows if r.get("type") in ("file", "zip")]  # fmt: skip
    csvs = [directory / r["path"] for r in rows if r.get("type") == "csv"]
    errors = [r for r in rows if "reason" in r]
    if not (sources or csvs or errors):
        shutil.rmtree(directory, ignore_errors=True)
        raise ValidationError("No files were uploaded.")
    csv_path = None
    read_as_1252: list[str] = []  # the words of a CSV read as Windows-1252: the job quotes them
    if csvs:
        csv_path = directory / "labels.csv"
        with open(csv_path, "wb") as out:
            for path in csvs:  # as UTF-8 text, one after the other (a UTF-16 one too); undecodable bytes as they are
                data = path.read_bytes()
                text = label_csv_text(data, errors=[], read_as_1252=read_as_1252)
                out.write(data.rstrip(b"\r\n") + b"\n" if text is None else text.rstrip("\r\n").encode() + b"\n")
    return import_job_create(
        project=project,
        created_by=user,
        sources=sources,
        csv_path=str(csv_path) if csv_path else None,
        labels_from_folders=labels_from_folders,
        dropped_folder=dropped_folder,
        staging_dir=str(directory),
        errors=errors,
        csv_read_as_1252=read_as_1252,
    )


def import_job_create(
    *,
    project: Project,
    created_by=None,
    sources: list[dict],
    csv_path: str | None = None,
    labels_from_folders: bool = False,
    dropped_folder: str | None = None,
    staging_dir: str | None = None,
    errors: list[dict] | None = None,
    to_front: bool = False,
    csv_read_as_1252: list[str] | None = None,
) -> Job:
    """`to_front`: the new images go into the training split at the front of the labeling queue, in the order of
    `sources` (images picked because the model finds them hard, as the strategy's picks are; the next scoring ranks
    them with the rest); a copy of a holdout image (same perceptual hash) stays in the holdout, at its front.
    `csv_read_as_1252`: the words of an uploaded labels CSV that the upload read as Windows-1252 (it stores it as
    UTF-8): the job's result quotes them."""
    params = {
        "sources": sources,
        "csv": csv_path,
        "labels_from_folders": labels_from_folders,
        "staging_dir": staging_dir,
        "errors": list(errors or []),
        **({"dropped_folder": dropped_folder} if dropped_folder else {}),
        **({"to_front": True} if to_front else {}),
        **({"csv_read_as_1252": csv_read_as_1252[:100]} if csv_read_as_1252 else {}),
    }
    return job_create(project=project, kind=JobKind.IMPORT, created_by=created_by, params=params)


def import_job_enqueue(*, job: Job) -> None:
    """Queue the job's task after commit; if the broker is unreachable the job fails with a clear message."""

    def send() -> None:
        if task_send("labeling.tasks.import_run_task", job.pk):
            return
        # The broker (Redis) is down or refused: say so instead of leaving a job queued forever.
        fresh = Job.objects.get(pk=job.pk)
        if fresh.status == JobStatus.QUEUED:
            job_finish(job=fresh, error="Could not queue the import: the task queue (Redis) is unreachable. "
                       "Nothing was imported; try again when it is back.")  # fmt: skip
            staging_remove(fresh)  # the uploads cannot be used again: a retry uploads them anew

    transaction.on_commit(send)


def import_folder_allowed(path: str) -> Path:
    """Resolve a server folder for the web form: it must lie under one of LABELLOOP_IMPORT_ROOTS."""
    roots = [Path(r).resolve() for r in getattr(settings, "LABELLOOP_IMPORT_ROOTS", [])]
    if not roots:
        raise ValidationError("Importing from server folders is disabled (set LABELLOOP_IMPORT_ROOTS).")
    resolved = Path(path).expanduser().resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise ValidationError("Server folders must be inside: " + ", ".join(str(r) for r in roots))
    if not resolved.is_dir():
        raise ValidationError(f"No folder {path} on the server.")
    return resolved

"""The import run: read files in bounded batches, decode them on threads, store items, keep the Job current.

Decoding runs on a thread pool: Pillow releases the GIL while it decodes, resizes and encodes, and a
thread pool works anywhere, including inside a Celery prefork child, which is a daemonic process and
may not start processes of its own. Batch k+1 decodes while batch k is stored.

Whatever goes wrong, the job ends: a bad file is rejected by name and reason and the batch goes on; any
other exception (a bug, a lost database, the worker's time limit) ends the job as failed with the reason
in its message, which the import page shows. Only a killed process leaves it running, and then the
broker redelivers the task, which resumes after the files already counted as done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from labeling.models import Job, JobStatus
from labeling.selectors.classes import PATH_SEPARATOR
from labeling.services.imports.batches import (
    _classes_by_path,
    _Pending,
    _read_batches,
    _Run,
    _store_batch,
)
from labeling.services.imports.class_names import ClassNames
from labeling.services.imports.collect import import_sources_collect
from labeling.services.imports.csv_encoding import cp1252_note
from labeling.services.imports.csv_rows import csv_rows_apply, shared_csv_names
from labeling.services.imports.validation import Inspected, Limits, inspect_or_reason
from labeling.services.jobs import job_finish, job_start
from labeling.services.time_limits import SoftLimit

logger = logging.getLogger(__name__)


def decoder_threads(threads: int | None = None) -> int:
    """How many threads decode: `threads`, else LABELLOOP_IMPORT_THREADS, else one per core up to 4; 1: inline."""
    for name in ("LABELLOOP_IMPORT_THREADS", "LABELLOOP_IMPORT_PROCESSES"):  # the second: its name before threads
        if threads is None:
            threads = getattr(settings, name, None)
    if threads is None:
        threads = min(4, os.cpu_count() or 1)
    return max(1, int(threads))


def import_run(
    *,
    job_id: int,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    processes: int | None = None,
    soft_limit: SoftLimit | None = None,
) -> dict:
    """Run an import Job to its end: succeeded, or failed with the reason in `job.message`. Never left running.

    Precondition: the job is queued, or running and being resumed (the broker redelivered its task).
    params: {"sources": [{"type": "file"|"zip"|"folder", "path": ..., "name": ...}], "csv": path|None,
    "labels_from_folders": bool, "dropped_folder": the folder dropped on the page (optional: folder_classes),
    "staging_dir": path to delete afterwards, "errors": pre-rejections}.
    A redelivered job resumes after the files it already counted as done. `processes` is the old name
    of `threads` (decoding ran in a process pool before); it is read the same way. `soft_limit`: the task's
    soft time limit as a flag, checked between batches (the job then ends failed with the time-limit reason).
    """
    job = Job.objects.select_related("project").get(pk=job_id)
    run = _Run(project=job.project, job=job, limits=Limits.from_settings(), progress=progress)
    try:
        _execute(run, decoder_threads(threads if threads is not None else processes), soft_limit or SoftLimit())
    except KeyboardInterrupt:
        _fail(run, "Import interrupted (Ctrl-C); the images imported before it are kept.")
        raise
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        _fail(run, import_failure_reason(exc, run))
    finally:
        if job.finished:
            staging_remove(job)
    result = run.result()
    return result if job.status == JobStatus.SUCCEEDED else {**result, "error": job.message}


def staging_remove(job: Job) -> None:
    """Delete a finished import's staging folder (browser uploads), whatever the outcome."""
    if (job.params or {}).get("staging_dir"):
        shutil.rmtree(job.params["staging_dir"], ignore_errors=True)


def import_failure_reason(exc: BaseException, run: _Run | None = None) -> str:
    """What the import page says about a job that stopped on an exception."""
    where = f" after {run.done} of {run.total} files" if run is not None and run.total else ""
    if isinstance(exc, SoftTimeLimitExceeded):
        return (f"Import stopped{where}: it ran past the task time limit (CELERY_TASK_SOFT_TIME_LIMIT). "
                "The images imported before it are kept; import the rest in smaller parts.")  # fmt: skip
    return f"Import failed{where}: {type(exc).__name__}: {exc}"[:500]


def import_job_fail(*, job_id: int, exc: BaseException) -> None:
    """The task's last resort when an exception escaped import_run: a job still in flight ends failed."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and not job.finished:
        job_finish(job=job, error=import_failure_reason(exc))
    if job is not None and job.finished:
        staging_remove(job)


def _fail(run: _Run, reason: str) -> None:
    job = run.job
    with contextlib.suppress(Exception):  # the database may be what failed; job_finish says it again
        run.flush_progress()
    job.done, job.total = run.done, run.total
    job_finish(job=job, result=run.result(), error=reason)


def _execute(run: _Run, threads: int, soft_limit: SoftLimit) -> None:
    job = run.job
    if job.status != JobStatus.RUNNING:
        job_start(job=job, message="Reading files…")
    params = job.params or {}
    resume_from = job.done
    errors: list[dict] = []
    csv_errors: list[dict] = []  # label problems, not files: they count in no file total
    previous = (job.result or {}) if resume_from else {}
    run.classes = _classes_by_path(run.project)
    # A top folder the first attempt left out stays out, though it may have made a root class of that name since
    left_out = {t["folder"] for t in (previous.get("folder_classes") or {}).get("top_folders", []) if t["left_out"]}
    roots = {path for path in run.classes if PATH_SEPARATOR not in path} - left_out
    read_as_1252: list[str] = []  # a labels CSV's words read as Windows-1252: the result quotes them
    entries, run.csv_labels, run.folder_classes = import_sources_collect(
        params, errors, csv_errors, root_classes=roots, read_as_1252=read_as_1252
    )
    run.labels_csv = cp1252_note(read_as_1252) if read_as_1252 else None
    if resume_from:
        run.counts.update({k: v for k, v in previous.items() if k in run.counts})
        run.by_reason.update(previous.get("rejected_by_reason") or {})
        run.new_classes.restore(previous.get("new_classes"))
        run.folder_classes.restore(previous.get("folder_classes"))
        run.relabeled.restore(previous)
        run.done = resume_from
        entries = entries[max(0, resume_from - len(params.get("errors", [])) - len(errors)) :]
    else:
        for error in [*params.get("errors", []), *errors]:
            run.reject(error["name"], error["reason"])
            run.done += 1
        for error in csv_errors:
            run.label_error(error["name"], error["reason"])
    run.total = run.done + len(entries)
    run.shared_csv = shared_csv_names(run, [entry.name for entry in entries])
    run.new_classes.known = set(run.classes) - set(run.new_classes.files)  # those made before a resume are new
    run.names = ClassNames.of(run.classes, run.new_classes.known)
    run.flush_progress()

    pool = ThreadPoolExecutor(threads, thread_name_prefix="import-decode") if threads > 1 else None
    try:
        previous = None  # batch k+1 decodes on the threads while batch k is stored
        for consumed, batch in _read_batches(entries, run):
            # A copy of a file read before is not decoded: it shares that file's fate ("" stands in for its result)
            if pool is not None:
                results: list = [
                    pool.submit(inspect_or_reason, p.data, run.limits) if not p.copy_of else "" for p in batch
                ]
            else:
                results = [inspect_or_reason(p.data, run.limits) if not p.copy_of else "" for p in batch]
            if previous is not None:
                _finish_batch(run, *previous)
                soft_limit.check()
            previous = (consumed, batch, results)
        if previous is not None:
            _finish_batch(run, *previous)
        csv_rows_apply(run)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # on a failure: drop queued files, finish the few running
    run.done = run.total
    run.flush_progress()
    job.message = run.summary()
    job.done = job.total = run.total
    job.save(update_fields=["message", "total"])
    job_finish(job=job, result=run.result())


def _finish_batch(run: _Run, consumed: int, batch: list[_Pending], results: list[Inspected | str | Future]) -> None:
    results = [r.result() if isinstance(r, Future) else r for r in results]
    if batch:
        _store_batch(run, batch, results)
    for pending in batch:  # copies of files read before, now that those are stored or refused
        if pending.copy_of is not None:
            run.duplicate_in_run(pending.entry, pending.copy_of, pending.sha256)
    run.done += consumed
    run.flush_progress()

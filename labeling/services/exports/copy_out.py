"""The export commands' --out copy, when it fails: the job that made the zip ends failed and its stored zip goes.

(The copy itself, and the checks of --out before any work, are the commands' own: labeling.management.out_path.)
"""

from __future__ import annotations

import contextlib

from labeling.models import Job
from labeling.services.exports import export_storage
from labeling.services.jobs import job_finish


def export_job_copy_fail(*, job: Job, reason: str) -> None:
    """Fail a finished export job whose zip could not be copied to --out, with `reason` (what went wrong).

    The caller ran the job and owns it (the export commands, which nobody else waits on): the job does not claim a
    success nobody received. Its stored zip is deleted, as nothing would expire a failed job's file; a file that
    cannot be deleted (gone already, a storage that cannot delete) is left.
    """
    result = dict(job.result or {})
    for key in result.pop("files", None) or []:
        with contextlib.suppress(OSError, NotImplementedError):
            export_storage().delete(key)
    job_finish(job=job, result=result, error=f"Copy to --out failed: {reason}")

"""--out of the export commands (export_dataset, export_model): one rule, checked before any work, written at the end.

--out names a folder when it ends in "/" (made if missing) or names an existing folder: the zip goes inside under its
download name. Anything else is the zip's own path (its missing parent folders are made). An existing file is replaced,
and the command says so. The check makes the missing folders and writes a probe file in the last (removing both), so a
path that cannot be written fails in a second with a CommandError, before a job exists, not after minutes of export.
The copy goes to a hidden temporary file beside the target and is renamed over it: a failed copy (disk full, folder
gone) leaves an existing file as it was and no half-written zip behind, and fails the job that made the zip (a
service: labeling.services.exports.copy_out).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.management.base import CommandError

from labeling.models import Job
from labeling.services.exports import export_job_file
from labeling.services.exports.copy_out import export_job_copy_fail

SEPARATORS = tuple(s for s in (os.sep, os.altsep, "/") if s)


@dataclass(frozen=True)
class OutPath:
    """A checked --out: `path` as given (~ expanded), a folder to put the zip in or the zip's own path."""

    raw: str
    path: Path
    folder: bool

    def target(self, name: str) -> Path:
        """Where the zip named `name` (its download name) goes."""
        return self.path / name if self.folder else self.path

    @property
    def replaces(self) -> Path | None:
        """The existing file this --out will replace, known before the work (a folder's zip name is not)."""
        return None if self.folder or not self.path.is_file() else self.path


def out_path_check(raw: str) -> OutPath:
    """Check --out before any work: its folder exists or can be made, is a folder and can be written, and a file
    path does not name a folder's parent that is a file, a device or a pipe. Raises CommandError; leaves nothing."""
    if not raw.strip():
        raise CommandError("--out is empty: give a zip path or a folder (ending in /).")
    path = Path(raw).expanduser()
    folder = raw.endswith(SEPARATORS) or path.is_dir()
    if folder and path.exists() and not path.is_dir():
        raise CommandError(f"--out {raw!r} ends in a separator (a folder) but {path} is a file, not a folder.")
    if not folder and path.exists() and not path.is_file():
        raise CommandError(f"--out {raw!r}: {path} exists and is not a regular file; give a zip path or a folder.")
    if not folder and path.is_file() and not os.access(path, os.W_OK):
        raise CommandError(f"--out {raw!r}: {path} exists and is read-only; it would not be replaced.")
    _probe(path if folder else path.parent, raw)
    return OutPath(raw=raw, path=path, folder=folder)


def _probe(directory: Path, raw: str) -> None:
    """Make `directory` (and its missing parents) and write a file in it, then remove what was made."""
    missing: list[Path] = []
    here = directory
    while not here.exists() and not here.is_symlink() and here.parent != here:
        missing.append(here)
        here = here.parent
    if here.exists() and not here.is_dir():
        raise CommandError(f"--out {raw!r}: cannot make the folder {directory}: {here} is a file, not a folder.")
    made: list[Path] = []
    try:
        for step in reversed(missing):
            try:
                step.mkdir()
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise CommandError(f"--out {raw!r}: cannot make the folder {step} ({reason}).") from exc
            made.append(step)
        try:
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".labelloop-out-check-"):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CommandError(f"--out {raw!r}: cannot write a file in {directory} ({reason}).") from exc
    finally:
        for step in reversed(made):
            with contextlib.suppress(OSError):
                step.rmdir()


@dataclass(frozen=True)
class Written:
    path: Path  # absolute
    replaced: bool  # a file was there and is now this zip

    def __str__(self) -> str:
        return f"{self.path}" + (" (replaced the file that was there)" if self.replaced else "")


def out_path_write(out: OutPath, source: BinaryIO, name: str) -> Written:
    """Copy `source` to --out (see the module docstring). Raises CommandError naming the target and the reason."""
    target = out.target(name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise CommandError(f"Could not write {target}: it is a folder now.")
        replaced = target.is_file()
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                shutil.copyfileobj(source, fh, 1024 * 1024)
            mask = os.umask(0)
            os.umask(mask)
            tmp.chmod(0o666 & ~mask)  # mkstemp makes it private; a zip gets the mode any new file gets
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CommandError(f"Could not write {target}: {exc.strerror or exc}.") from exc
    return Written(path=target.resolve(), replaced=replaced)


def export_job_copy(*, job: Job, out: OutPath) -> Written:
    """Copy a finished export job's zip to --out. When the copy fails the job ends failed with the reason and its
    stored zip is deleted (labeling.services.exports.copy_out.export_job_copy_fail); then CommandError."""
    try:
        handle, name = export_job_file(job=job)
        with handle:
            return out_path_write(out, handle, name)
    except (CommandError, OSError) as exc:
        reason = str(exc) if isinstance(exc, CommandError) else f"Could not read the stored export: {exc}"
        export_job_copy_fail(job=job, reason=reason)
        failed = f"The export ran but nothing was written to --out; job #{job.number} failed."
        raise CommandError(f"{reason} {failed}") from exc

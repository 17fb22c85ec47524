"""What an import reads: browser uploads, zips and server folders as Entries, and label CSVs.

Operating-system litter is never an image and never a class: macOS `__MACOSX/` folders, `.DS_Store`,
`._*` AppleDouble files and `Icon\\r`, Windows `Thumbs.db` and `desktop.ini`, and any dot-file. Which folders of a
path are its class (every one, but for the folder dropped on the page and a zip's top folder named as the zip) is
labeling.services.imports.folder_classes' rule.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import stat
import struct
import zipfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from labeling.selectors.classes import class_path, class_path_parse
from labeling.services.imports.archives import zip_open_checked
from labeling.services.imports.csv_encoding import cp1252_odd_word, cp1252_words, likely_encodings
from labeling.services.imports.folder_classes import top_folder_left_out
from labeling.services.imports.validation import binary_size

SPLIT_DIR_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}
JUNK_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini", "Icon\r"}
SAVE_AS = "save it as UTF-8 CSV"


@dataclass
class Entry:
    """One file to import: a display name, a bounded reader and an optional class path from its folder."""

    name: str
    read: Callable[[int], bytes]  # read(max_bytes) -> at most max_bytes + 1 bytes
    label_path: str | None = None
    label_paths: list[str] | None = None  # several classes (a multi-label export's metadata); wins over label_path
    size: int | None = None  # bytes, as the file system or the zip's directory gives them (to say how much too big)
    archive: str | None = None  # the zip it is an entry of, as the job names that zip ("photos.zip:cat/1.png")


def read_file(path: Path) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        # Opened without blocking and checked on the open file: a pipe swapped in after the folder was
        # listed is refused instead of waiting for a writer forever.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise OSError("not a regular file")
            return fh.read(limit + 1)

    return read


def file_size(path: Path) -> int | None:
    """The file's size, or None when it cannot be read (its reading then says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return None


def _read_zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        with archive.open(info) as fh:  # reads at most limit + 1 bytes: a zip bomb entry stops there
            return fh.read(limit + 1)

    return read


def is_junk(parts: Iterable[str]) -> bool:
    """True for operating-system litter anywhere in a path (see the module docstring)."""
    return any(p.startswith(".") or p in JUNK_NAMES for p in parts)


def folder_label(parts: tuple[str, ...]) -> str | None:
    """ImageFolder: class path from the folders above the file; a leading train/val/test folder is ignored.

    The path is not checked here: the run checks it with class_path_parse and names the file if it is bad.
    """
    folders = list(parts[:-1])
    if folders and folders[0].lower() in SPLIT_DIR_NAMES and len(folders) > 1:
        folders = folders[1:]
    return class_path(folders) or None


def zip_entry_unsafe(name: str) -> bool:
    """True for names that would land outside the extraction root (zip slip)."""
    normalized = name.replace("\\", "/")
    return (
        normalized.startswith("/")
        or bool(re.match(r"^[A-Za-z]:", normalized))
        or ".." in PurePosixPath(normalized).parts
        or "\x00" in normalized
    )


def zip_entries(
    path: Path,
    *,
    labels_from_folders: bool,
    display: str,
    errors: list[dict],
    root_classes: Collection[str] = (),
    notes: list[dict] | None = None,
) -> list[Entry]:
    """List a zip's image entries; unsafe, oversized or overlapping archives add to `errors` instead.

    The whole archive is checked before anything in it is inflated (archives.py); each entry is then
    read with a cap, whatever size it declares. With `labels_from_folders`, its top folder is left out of the
    classes by folder_classes' rule (`root_classes`: the project's root class names; `notes` gets the decision).
    """
    size = path.stat().st_size
    if size > settings.LABELLOOP_MAX_ZIP_BYTES:
        errors.append({"name": display, "reason": f"zip is {binary_size(size)}, over the "
                       f"{binary_size(settings.LABELLOOP_MAX_ZIP_BYTES)} limit"})  # fmt: skip
        return []
    try:
        archive, refusal = zip_open_checked(
            path, max_entries=settings.LABELLOOP_MAX_ARCHIVE_ENTRIES, max_bytes=settings.LABELLOOP_MAX_ARCHIVE_BYTES
        )
    except (zipfile.BadZipFile, OSError, ValueError, struct.error) as exc:
        errors.append({"name": display, "reason": f"not a readable zip ({exc})"[:300]})
        return []
    if archive is None:
        errors.append({"name": display, "reason": refusal})
        return []
    infos = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        if zip_entry_unsafe(info.filename):
            errors.append({"name": f"{display}:{info.filename}", "reason": "unsafe path in zip (zip slip): refused"})
            continue
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if is_junk(parts):
            continue
        if info.flag_bits & 0x1:
            errors.append({"name": f"{display}:{info.filename}", "reason": "encrypted zip entry"})
            continue
        infos.append((info, parts))
    strip = 0
    if labels_from_folders:
        notes = notes if notes is not None else []
        paths = [parts for _, parts in infos]
        strip = top_folder_left_out(paths, named=None, where=display, root_classes=root_classes, notes=notes)
    entries = []
    for info, parts in infos:
        entries.append(
            Entry(
                name="/".join(parts),
                read=_read_zip_entry(archive, info),
                label_path=folder_label(parts[strip:]) if labels_from_folders else None,
                size=info.file_size,
                archive=display,
            )
        )
    return entries


def folder_entries(root: Path, *, labels_from_folders: bool, errors: list[dict]) -> list[Entry]:
    """All files under a server folder, sorted; symlinks that leave the folder are refused."""
    root = root.resolve()
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_junk((d,)))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            rel = path.relative_to(root)
            if is_junk(rel.parts):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                errors.append({"name": rel.as_posix(), "reason": "symbolic link outside the folder: refused"})
                continue
            if not path.is_file():  # a pipe or device would block or never end
                errors.append({"name": rel.as_posix(), "reason": "not a regular file: refused"})
                continue
            if filename.lower().endswith(".csv"):
                continue
            entries.append(
                Entry(
                    name=rel.as_posix(),
                    read=read_file(path),
                    label_path=folder_label(rel.parts) if labels_from_folders else None,
                    size=file_size(path),
                )
            )
    return entries


def _csv_delimiter(text: str) -> str:
    """The CSV's separator: a comma, unless the first line has none and has a tab or a ";" (Excel saves CSV with
    ";" where "," is the decimal mark). A ";"-separated file quotes a multi-label cell: `a.png;"cat;dog"`."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "," in first:
        return ","
    return "\t" if "\t" in first else ";" if ";" in first else ","


def label_csv_text(data: bytes, *, errors: list[dict], read_as_1252: list[str] | None = None) -> str | None:
    """A labels CSV's text: UTF-8 (with or without its BOM), UTF-16 with its BOM (Excel's "Unicode Text"), or
    Windows-1252 (Excel's "CSV (Comma delimited)" on Windows) where it reads as Western text; None, with one line in
    `errors`, for anything else. A Japanese or Chinese Excel's CSV decodes as Windows-1252 too, as mojibake ("”L" for
    猫): csv_encoding tells it by its words and names the encoding it likely is. Text read as Windows-1252 adds its
    words with other than ASCII letters to `read_as_1252`: a Central European word may read as a Western one
    ("Gdañsk"), and the job quotes them (csv_encoding.cp1252_note)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            errors.append({"name": "labels CSV", "reason": "starts as UTF-16 text but is not: save it as UTF-8 CSV"})
            return None
    reason = f"not UTF-8 (or Windows-1252) text: {SAVE_AS}"
    if b"\x00" not in data:  # UTF-16 without its byte order mark, or no text at all, would read as rows of NULs
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("cp1252")  # what Excel on Windows saves as "CSV (Comma delimited)"
        except UnicodeDecodeError:
            text = odd = None
        else:
            if (odd := cp1252_odd_word(text)) is None:
                if read_as_1252 is not None:
                    read_as_1252 += [word for word in cp1252_words(text) if word not in read_as_1252]
                return text
        seen = f'Windows-1252 would read "{odd[:40]}"' if odd else ""
        guesses = likely_encodings(data)
        if len(guesses) == 1:
            reason = f"looks like {guesses[0]} text, not UTF-8 or Windows-1252{f' ({seen})' * bool(seen)}: {SAVE_AS}"
        elif guesses:  # a few words that several encodings read about as well: no one named as the answer
            perhaps = f"{', '.join(guesses[:-1])} or {guesses[-1]}"
            reason = f"not UTF-8 or Windows-1252 text (perhaps {perhaps}{f'; {seen}' * bool(seen)}): {SAVE_AS}"
        elif odd:
            reason = f'not UTF-8 text, and as Windows-1252 it would read "{odd[:40]}": {SAVE_AS}'
    errors.append({"name": "labels CSV", "reason": reason})
    return None


def label_csv_parse(data: bytes, *, errors: list[dict], read_as_1252: list[str] | None = None) -> dict[str, list[str]]:
    """`filename,label` rows (header optional) -> name -> class paths. "a/b" is a hierarchy, "a;b" multi-label.

    A bad row is refused by its row number and reason (its file is still imported, unlabeled); the other
    rows go on. `read_as_1252`: label_csv_text's.
    """
    text = label_csv_text(data, errors=errors, read_as_1252=read_as_1252)
    if text is None:
        return {}
    labels: dict[str, list[str]] = {}
    number = 0
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=_csv_delimiter(text)), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if number == 1 and row[0].strip().lower() in ("filename", "file", "name", "path", "image"):
                continue
            where = f"labels CSV row {number}"
            if len(row) < 2 or not row[0].strip():
                errors.append({"name": where, "reason": "expected filename,label"})
                continue
            name = row[0].strip().replace("\\", "/")
            try:
                paths = [class_path_parse(p) for p in row[1].split(";") if p.strip().strip("/")]
            except ValueError as exc:
                errors.append({"name": f"{where} ({name[:200]})", "reason": f"label {row[1].strip()[:200]!r}: {exc}"})
                continue
            labels[name] = paths
    except csv.Error as exc:  # a NUL byte or a field past csv's size limit: the rows before it stand
        errors.append({"name": "labels CSV", "reason": f"unreadable from row {number + 1}: {exc}"[:300]})
    return labels

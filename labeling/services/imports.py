"""Validated image import: files, zips, server folders (ImageFolder) and label CSVs become Items.

Every file is decoded with Pillow and checked before anything is stored: byte limit, empty files,
a format allow-list decided by the decoded content (never the extension), a pixel limit checked
from the header before decoding (decompression bombs), and a full decode (truncated files fail).
A rejected file is reported by name and reason and changes nothing; a bad file never stops a batch.

Decisions (documented for users in the README):
- The original bytes are stored untouched (sha256 is of those bytes). width/height are the
  EXIF-*oriented* size and the thumbnail is oriented, so what people see matches what training
  reads (training opens originals with ImageOps.exif_transpose too).
- Animated GIFs / multi-page TIFFs: the first frame is the image.
- CMYK, 16-bit and palette/alpha images are converted to RGB (alpha over white) for the thumbnail
  and perceptual hash; the original keeps its mode.
- Split and cold-start priority are derived from the sha256, so re-importing the same bytes
  always yields the same split (holdout with probability project.holdout_fraction) and order.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import struct
import tempfile
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from labeling.models import (
    Item,
    ItemState,
    Job,
    JobKind,
    JobStatus,
    LabelClass,
    LabelSource,
    Project,
    ResolvedLabel,
    Split,
)
from labeling.services.jobs import job_create, job_finish, job_start
from labeling.services.projects import label_classes_from_paths

logger = logging.getLogger(__name__)

# Detected format -> stored suffix. MPO is what Pillow calls many camera JPEGs.
ALLOWED_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
                   "TIFF": ".tif"}  # fmt: skip
OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]  # MPO comes through the JPEG opener
ALLOWED_LABEL = "JPEG, PNG, WebP, GIF, BMP, TIFF"
SPLIT_DIR_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}
BATCH_FILES = 256
BATCH_BYTES = 128 * 1024 * 1024
MAX_STORED_ERRORS = 5000


class ImportRejected(Exception):
    """A file that is not imported; `reason` is shown to the user next to the file name."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    thumb_size: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_bytes=settings.LABELLOOP_MAX_UPLOAD_BYTES,
            max_pixels=settings.LABELLOOP_MAX_IMAGE_PIXELS,
            thumb_size=settings.LABELLOOP_THUMBNAIL_SIZE,
        )


@dataclass(frozen=True)
class Inspected:
    """What validation learned about one file (pure data: crosses process boundaries)."""

    format: str
    width: int
    height: int
    phash: str
    thumbnail: bytes


# --------------------------------------------------------------------------------------------
# Validation (pure: no Django, safe to run in worker processes)
# --------------------------------------------------------------------------------------------


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _sniff_non_image(data: bytes) -> str:
    """A clear reason for common non-images that Pillow cannot identify."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head:
        return "SVG (vector) images are not accepted; convert to PNG first"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512] or b"<body" in head[:1024]:
        return "an HTML page, not an image"
    if head.startswith(b"%pdf"):
        return "a PDF document, not an image"
    if head.startswith(b"pk\x03\x04"):
        return "a zip archive, not an image (upload zips as zips, not renamed)"
    sample = data[:2048]
    if b"\x00" not in sample:
        try:
            sample.decode("utf-8")
            return "a text file, not an image"
        except UnicodeDecodeError as exc:
            if exc.start >= len(sample) - 4:  # a multi-byte character cut by the sample
                return "a text file, not an image"
    return f"not a supported image (accepted: {ALLOWED_LABEL})"


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> RGB for display: alpha over white, 16-bit/float stretched to 8 bits."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float32)
        lo, hi = float(values.min()), float(values.max())
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        return Image.fromarray(scaled.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _dct_matrix(n: int = 32) -> np.ndarray:
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return 2.0 * np.cos(np.pi * k * (2 * x + 1) / (2 * n))


_DCT32 = _dct_matrix()


def perceptual_hash(image: Image.Image) -> str:
    """imagehash.phash (same 16 hex digits) without importing scipy: 32x32 grey, 2-D DCT-II, 8x8 vs median."""
    pixels = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT32 @ pixels @ _DCT32.T)[:8, :8]
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def image_inspect(data: bytes, *, limits: Limits) -> Inspected:
    """Validate one file's bytes and make its thumbnail; raises ImportRejected with a clear reason."""
    size = len(data)
    if size == 0:
        raise ImportRejected("empty file (0 bytes)")
    if size > limits.max_bytes:
        raise ImportRejected(f"file is {_megabytes(size)}, over the {_megabytes(limits.max_bytes)} limit")
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, whatever other code chose
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _inspect(data, limits)
    except ImportRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImportRejected(f"too many pixels (over the {limits.max_pixels:,} pixel limit)") from None
    except UnidentifiedImageError:
        raise ImportRejected(_sniff_non_image(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise ImportRejected(f"truncated or corrupt image ({exc})"[:300]) from None
    except Exception as exc:  # any decoder surprise is a bad file, not a crash
        raise ImportRejected(f"could not be decoded ({type(exc).__name__}: {exc})"[:300]) from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _inspect(data: bytes, limits: Limits) -> Inspected:
    with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as image:
        fmt = image.format or ""
        if fmt not in ALLOWED_FORMATS:
            raise ImportRejected(f"{fmt} images are not accepted (accepted: {ALLOWED_LABEL})")
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImportRejected("image has no pixels")
        # The header is all that has been read so far: refuse bombs before decoding.
        if width * height > limits.max_pixels:
            raise ImportRejected(
                f"image is {width}x{height} = {width * height:,} pixels, over the {limits.max_pixels:,} pixel limit"
            )
        if fmt in ("JPEG", "MPO"):
            # Decode at a reduced DCT scale when the image is much larger than the thumbnail: the whole
            # stream is still read, so truncation is still detected.
            image.draft(image.mode, (limits.thumb_size, limits.thumb_size))
        image.load()  # full decode (first frame of animations)
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        rgb = _to_rgb(ImageOps.exif_transpose(image) if orientation in range(2, 9) else image)
        phash = perceptual_hash(rgb)  # of the oriented image (JPEGs: at draft scale), as imagehash.phash
        rgb.thumbnail((limits.thumb_size, limits.thumb_size), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        rgb.save(buffer, "WEBP", quality=80, method=2)
        return Inspected(format="JPEG" if fmt == "MPO" else fmt, width=width, height=height, phash=phash,
                         thumbnail=buffer.getvalue())  # fmt: skip


def _inspect_in_worker(args: tuple[bytes, Limits]) -> Inspected | str:
    """Pool entry point: returns the Inspected result or the rejection reason."""
    data, limits = args
    try:
        return image_inspect(data, limits=limits)
    except ImportRejected as exc:
        return exc.reason
    except Exception as exc:  # never let one odd file kill the pool
        return f"could not be read ({type(exc).__name__}: {exc})"[:300]


# --------------------------------------------------------------------------------------------
# Storing items
# --------------------------------------------------------------------------------------------


def _unit(sha256: str, start: int) -> float:
    """A deterministic number in [0, 1) from 13 hex digits of the sha256."""
    return int(sha256[start : start + 13], 16) / 16**13


def _new_item(*, project: Project, name: str, sha256: str, info: Inspected, labeled: bool) -> Item:
    return Item(
        project=project,
        sha256=sha256,
        phash=info.phash,
        width=info.width,
        height=info.height,
        format=info.format,
        original_name=name[:500],
        split=Split.HOLDOUT if _unit(sha256, 0) < project.holdout_fraction else Split.TRAIN,
        state=ItemState.LABELED if labeled else ItemState.UNLABELED,
        priority=_unit(sha256, 16),  # random cold-start order until a model ranks the pool
    )


def _store_files(item: Item, data: bytes, info: Inspected, stored: list[str]) -> None:
    item.file.save(f"{item.sha256}{ALLOWED_FORMATS[info.format]}", ContentFile(data), save=False)
    stored.append(item.file.name)
    item.thumbnail.save("thumb.webp", ContentFile(info.thumbnail), save=False)
    stored.append(item.thumbnail.name)


def _delete_files(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            default_storage.delete(name)


def _duplicate_reason(project: Project, sha256: str) -> str:
    other = Item.objects.filter(project=project, sha256=sha256).values_list("original_name", flat=True).first()
    return f"duplicate of {other}" if other else "duplicate of a file imported at the same moment"


def _attach_labels(items_and_classes: list[tuple[Item, list[LabelClass]]]) -> None:
    """Create ResolvedLabel rows (source=import) for freshly created items."""
    if not items_and_classes:
        return
    rows = [ResolvedLabel(item=item, project_id=item.project_id, source=LabelSource.IMPORT)
            for item, _ in items_and_classes]  # fmt: skip
    ResolvedLabel.objects.bulk_create(rows)
    through = ResolvedLabel.classes.through
    links = [through(resolvedlabel_id=row.pk, labelclass_id=c.pk)
             for row, (_, classes) in zip(rows, items_and_classes, strict=True) for c in classes]  # fmt: skip
    through.objects.bulk_create(links)


def item_create_from_bytes(
    *, project: Project, name: str, data: bytes, split: str | None = None, classes: list[LabelClass] | None = None
) -> Item:
    """Validate, store and create one item; raises ImportRejected (and then nothing was stored)."""
    sha256 = hashlib.sha256(data).hexdigest()
    info = image_inspect(data, limits=Limits.from_settings())
    if Item.objects.filter(project=project, sha256=sha256).exists():
        raise ImportRejected(_duplicate_reason(project, sha256))
    item = _new_item(project=project, name=name, sha256=sha256, info=info, labeled=bool(classes))
    if split is not None:
        item.split = split
    stored: list[str] = []
    try:
        _store_files(item, data, info, stored)
        with transaction.atomic():
            item.save()
            if classes:
                _attach_labels([(item, classes)])
    except IntegrityError:
        _delete_files(stored)
        raise ImportRejected(_duplicate_reason(project, sha256)) from None
    except BaseException:
        _delete_files(stored)
        raise
    return item


# --------------------------------------------------------------------------------------------
# Sources: what an import job reads
# --------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One file to import: a display name, a bounded reader and an optional class path from its folder."""

    name: str
    read: Callable[[int], bytes]  # read(max_bytes) -> at most max_bytes + 1 bytes
    label_path: str | None = None


def _read_file(path: Path) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        with open(path, "rb") as fh:
            return fh.read(limit + 1)

    return read


def _read_zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        with archive.open(info) as fh:  # reads at most limit + 1 bytes: a zip bomb entry stops there
            return fh.read(limit + 1)

    return read


def _is_hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" or p in ("Thumbs.db", "desktop.ini") for p in parts)


def _folder_label(parts: tuple[str, ...]) -> str | None:
    """ImageFolder: class path from the folders above the file; a leading train/val/test folder is ignored."""
    folders = list(parts[:-1])
    if folders and folders[0].lower() in SPLIT_DIR_NAMES and len(folders) > 1:
        folders = folders[1:]
    return "/".join(folders) or None


def zip_entry_unsafe(name: str) -> bool:
    """True for names that would land outside the extraction root (zip slip)."""
    normalized = name.replace("\\", "/")
    return (
        normalized.startswith("/")
        or bool(re.match(r"^[A-Za-z]:", normalized))
        or ".." in PurePosixPath(normalized).parts
        or "\x00" in normalized
    )


def zip_entries(path: Path, *, labels_from_folders: bool, display: str, errors: list[dict]) -> list[Entry]:
    """List a zip's image entries; unsafe or oversized archives add to `errors` instead."""
    size = path.stat().st_size
    if size > settings.LABELLOOP_MAX_ZIP_BYTES:
        errors.append({"name": display, "reason": f"zip is {_megabytes(size)}, over the "
                       f"{_megabytes(settings.LABELLOOP_MAX_ZIP_BYTES)} limit"})  # fmt: skip
        return []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        errors.append({"name": display, "reason": f"not a readable zip ({exc})"})
        return []
    infos = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        if zip_entry_unsafe(info.filename):
            errors.append({"name": f"{display}:{info.filename}", "reason": "unsafe path in zip (zip slip): refused"})
            continue
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if _is_hidden(parts):
            continue
        if info.flag_bits & 0x1:
            errors.append({"name": f"{display}:{info.filename}", "reason": "encrypted zip entry"})
            continue
        infos.append((info, parts))
    # A zip of a folder wraps everything in one top folder: that folder is not a class.
    strip = 0
    if infos and all(len(parts) >= 3 for _, parts in infos) and len({parts[0] for _, parts in infos}) == 1:
        strip = 1
    entries = []
    for info, parts in infos:
        inner = parts[strip:]
        entries.append(
            Entry(
                name="/".join(parts),
                read=_read_zip_entry(archive, info),
                label_path=_folder_label(inner) if labels_from_folders else None,
            )
        )
    return entries


def folder_entries(root: Path, *, labels_from_folders: bool, errors: list[dict]) -> list[Entry]:
    """All files under a server folder, sorted; symlinks that leave the folder are refused."""
    root = root.resolve()
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden((d,)))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            rel = path.relative_to(root)
            if _is_hidden(rel.parts):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                errors.append({"name": rel.as_posix(), "reason": "symbolic link outside the folder: refused"})
                continue
            if filename.lower().endswith(".csv"):
                continue
            entries.append(
                Entry(
                    name=rel.as_posix(),
                    read=_read_file(path),
                    label_path=_folder_label(rel.parts) if labels_from_folders else None,
                )
            )
    return entries


def label_csv_parse(data: bytes, *, errors: list[dict]) -> dict[str, list[str]]:
    """`filename,label` rows (header optional) -> name -> class paths. "a/b" is a hierarchy, "a;b" multi-label."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.append({"name": "labels CSV", "reason": "not UTF-8 text"})
        return {}
    labels: dict[str, list[str]] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if number == 1 and row[0].strip().lower() in ("filename", "file", "name", "path", "image"):
            continue
        if len(row) < 2 or not row[0].strip():
            errors.append({"name": f"labels CSV line {number}", "reason": "expected filename,label"})
            continue
        paths = [p.strip().strip("/") for p in row[1].split(";") if p.strip().strip("/")]
        labels[row[0].strip().replace("\\", "/")] = paths
    return labels


# --------------------------------------------------------------------------------------------
# The import run
# --------------------------------------------------------------------------------------------


@dataclass
class _Pending:
    entry: Entry
    data: bytes
    sha256: str


@dataclass
class _Run:
    project: Project
    job: Job
    limits: Limits
    csv_labels: dict[str, list[str]]
    progress: Callable[[int, int], None] | None
    classes: dict[str, LabelClass] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"imported": 0, "rejected": 0, "duplicates": 0, "labeled": 0, "label_errors": 0}
    )
    done: int = 0
    seen: dict[str, str] = field(default_factory=dict)  # sha256 -> name, within this run
    matched_csv: set[str] = field(default_factory=set)

    def reject(self, name: str, reason: str, *, duplicate: bool = False) -> None:
        self.counts["duplicates" if duplicate else "rejected"] += 1
        self._error(name, reason)

    def _error(self, name: str, reason: str) -> None:
        if len(self.job.errors) < MAX_STORED_ERRORS:
            self.job.errors.append({"name": name, "reason": reason})

    def label_error(self, name: str, reason: str) -> None:
        self.counts["label_errors"] += 1
        self._error(name, reason)

    def classes_for(self, entry: Entry) -> list[LabelClass]:
        paths = self._csv_paths(entry.name)
        if paths is None:
            paths = [entry.label_path] if entry.label_path else []
        return self._resolve(entry.name, paths)

    def _csv_paths(self, name: str) -> list[str] | None:
        for key in (name, name.rsplit("/", 1)[-1]):
            if key in self.csv_labels:
                self.matched_csv.add(key)
                return self.csv_labels[key]
        return None

    def _resolve(self, name: str, paths: list[str]) -> list[LabelClass]:
        if not paths:
            return []
        if len(paths) > 1 and not self.project.is_multi_label:
            self.label_error(name, f"{len(paths)} labels for a single-label project; left unlabeled")
            return []
        missing = [p for p in paths if p not in self.classes]
        if missing:
            try:
                self.classes = label_classes_from_paths(project=self.project, paths=missing)
            except ValidationError as exc:
                self.label_error(name, "could not create class: " + "; ".join(exc.messages))
                return []
        return [self.classes[p] for p in dict.fromkeys(paths)]

    def flush_progress(self, total: int) -> None:
        """One UPDATE per batch: the UI polls it and a resumed job continues from `done`."""
        if self.progress:
            self.progress(self.done, total)
        Job.objects.filter(pk=self.job.pk).update(
            done=self.done, total=total, errors=self.job.errors, result=self.counts,
            message=f"{self.counts['imported']} imported, {self.counts['rejected'] + self.counts['duplicates']} "
                    "rejected",
        )  # fmt: skip


def _read_batches(entries: list[Entry], run: _Run) -> Iterator[tuple[int, list[_Pending]]]:
    """Read files in bounded batches; size and duplicate checks happen here, before decoding."""
    batch: list[_Pending] = []
    batch_bytes = 0
    consumed = 0
    for entry in entries:
        consumed += 1
        try:
            data = entry.read(run.limits.max_bytes)
        except (OSError, zipfile.BadZipFile, RuntimeError, EOFError) as exc:
            run.reject(entry.name, f"could not be read ({exc})"[:300])
            continue
        if len(data) > run.limits.max_bytes:
            run.reject(entry.name, f"file is over the {_megabytes(run.limits.max_bytes)} limit")
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 in run.seen:
            run.reject(entry.name, f"duplicate of {run.seen[sha256]}", duplicate=True)
            continue
        run.seen[sha256] = entry.name
        batch.append(_Pending(entry, data, sha256))
        batch_bytes += len(data)
        if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
            yield consumed, batch
            batch, batch_bytes, consumed = [], 0, 0
    if batch or consumed:
        yield consumed, batch


def _store_batch(run: _Run, batch: list[_Pending], results: list[Inspected | str]) -> None:
    """Store files then rows for one batch; on any failure nothing of the failed part remains."""
    project = run.project
    existing = dict(
        Item.objects.filter(project=project, sha256__in=[p.sha256 for p in batch]).values_list(
            "sha256", "original_name"
        )
    )
    ready: list[tuple[Item, _Pending, Inspected, list[LabelClass]]] = []
    for pending, result in zip(batch, results, strict=True):
        if isinstance(result, str):
            run.reject(pending.entry.name, result)
        elif pending.sha256 in existing:
            run.reject(pending.entry.name, f"duplicate of {existing[pending.sha256]}", duplicate=True)
        else:
            classes = run.classes_for(pending.entry)
            item = _new_item(project=project, name=pending.entry.name, sha256=pending.sha256, info=result,
                             labeled=bool(classes))  # fmt: skip
            ready.append((item, pending, result, classes))
    if not ready:
        return
    stored: list[str] = []
    try:
        for item, pending, info, _ in ready:
            _store_files(item, pending.data, info, stored)
        with transaction.atomic():
            Item.objects.bulk_create([r[0] for r in ready])
            _attach_labels([(item, classes) for item, _, _, classes in ready if classes])
    except Exception:
        # A concurrent import of the same file (unique constraint) or a storage/DB hiccup:
        # fall back to one item at a time so only the offending files are rejected.
        _delete_files(stored)
        for item, _, _, _ in ready:
            item.pk = None
            item.file.name = item.thumbnail.name = None
        _store_one_by_one(run, ready)
        return
    run.counts["imported"] += len(ready)
    run.counts["labeled"] += sum(1 for r in ready if r[3])


def _store_one_by_one(run: _Run, ready: list) -> None:
    for item, pending, info, classes in ready:
        stored: list[str] = []
        try:
            _store_files(item, pending.data, info, stored)
            with transaction.atomic():
                item.save()
                if classes:
                    _attach_labels([(item, classes)])
        except IntegrityError:
            _delete_files(stored)
            run.reject(pending.entry.name, _duplicate_reason(run.project, pending.sha256), duplicate=True)
            continue
        except Exception as exc:
            _delete_files(stored)
            logger.exception("storing %s failed", pending.entry.name)
            run.reject(pending.entry.name, f"could not be stored ({type(exc).__name__}: {exc})"[:300])
            continue
        run.counts["imported"] += 1
        run.counts["labeled"] += bool(classes)


def _apply_csv_to_existing(run: _Run) -> None:
    """Labels for items imported earlier (CSV rows that matched nothing in this batch)."""
    remaining = {name: paths for name, paths in run.csv_labels.items() if name not in run.matched_csv}
    if not remaining:
        return
    items = Item.objects.filter(project=run.project)
    by_name = {i.original_name: i for i in items.filter(original_name__in=list(remaining)).select_related("resolved")}
    for name, paths in remaining.items():
        item = by_name.get(name)
        if item is None:
            candidates = list(items.filter(original_name__endswith="/" + name).select_related("resolved")[:2])
            if len(candidates) == 1:
                item = candidates[0]
            else:
                run.label_error(name, "no item with this name" if not candidates else "name matches several items")
                continue
        resolved = getattr(item, "resolved", None)
        if resolved is not None and resolved.source != LabelSource.IMPORT:
            run.label_error(name, "already labeled in Labelloop; imported label not applied")
            continue
        classes = run._resolve(name, paths)
        if not classes:
            continue
        with transaction.atomic():
            if resolved is None:
                resolved = ResolvedLabel.objects.create(item=item, project=run.project, source=LabelSource.IMPORT)
            resolved.classes.set(classes)
            Item.objects.filter(pk=item.pk).update(state=ItemState.LABELED)
        run.counts["labeled"] += 1


def _collect(params: dict, errors: list[dict]) -> tuple[list[Entry], dict[str, list[str]]]:
    labels_from_folders = bool(params.get("labels_from_folders"))
    entries: list[Entry] = []
    for source in params.get("sources", []):
        path = Path(source["path"])
        display = source.get("name") or path.name
        if not path.exists():
            errors.append({"name": display, "reason": "not found on the server"})
        elif source["type"] == "zip":
            entries += zip_entries(path, labels_from_folders=labels_from_folders, display=display, errors=errors)
        elif source["type"] == "folder":
            entries += folder_entries(path, labels_from_folders=labels_from_folders, errors=errors)
        else:
            # Browser folder drops send "class/file.jpg" names: the folder can be the class too.
            label = _folder_label(PurePosixPath(display).parts) if labels_from_folders else None
            entries.append(Entry(name=display, read=_read_file(path), label_path=label))
    csv_labels: dict[str, list[str]] = {}
    if params.get("csv"):
        try:
            csv_labels = label_csv_parse(Path(params["csv"]).read_bytes(), errors=errors)
        except OSError as exc:
            errors.append({"name": "labels CSV", "reason": f"could not be read ({exc})"})
    return entries, csv_labels


def _pool_size(processes: int | None, n: int) -> int:
    if processes is None:
        processes = getattr(settings, "LABELLOOP_IMPORT_PROCESSES", min(2, os.cpu_count() or 1))
    return processes if n >= 64 and processes > 1 else 0


def import_run(
    *, job_id: int, progress: Callable[[int, int], None] | None = None, processes: int | None = None
) -> dict:
    """Run an import Job. Precondition: the caller has marked the job running (or it is queued).

    params: {"sources": [{"type": "file"|"zip"|"folder", "path": ..., "name": ...}], "csv": path|None,
    "labels_from_folders": bool, "staging_dir": path to delete afterwards, "errors": pre-rejections}.
    A redelivered job resumes after the files it already counted as done.
    """
    job = Job.objects.select_related("project").get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        job_start(job=job, message="Reading files…")
    project = job.project
    params = job.params or {}
    resume_from = job.done
    errors: list[dict] = []
    try:
        entries, csv_labels = _collect(params, errors)
    except Exception as exc:
        logger.exception("import %s could not list its sources", job_id)
        job_finish(job=job, error=f"Import failed: {exc}")
        return job.result
    run = _Run(project=project, job=job, limits=Limits.from_settings(), csv_labels=csv_labels, progress=progress)
    if resume_from:
        run.counts.update({k: v for k, v in (job.result or {}).items() if k in run.counts})
        run.done = resume_from
        entries = entries[max(0, resume_from - len(params.get("errors", [])) - len(errors)) :]
    else:
        for error in [*params.get("errors", []), *errors]:
            run.reject(error["name"], error["reason"])
            run.done += 1
    total = run.done + len(entries)
    run.classes = {c.path.replace(" / ", "/"): c for c in LabelClass.objects.filter(project=project)}
    run.flush_progress(total)

    size = _pool_size(processes, len(entries))
    pool = multiprocessing.get_context("fork").Pool(size) if size else None
    try:
        pending_async = None  # batch k+1 decodes in the pool while batch k is stored
        for consumed, batch in _read_batches(entries, run):
            work = [(p.data, run.limits) for p in batch]
            if pool is not None:
                current = (consumed, batch, pool.map_async(_inspect_in_worker, work, chunksize=8))
            else:
                current = (consumed, batch, [_inspect_in_worker(w) for w in work])
            if pending_async is not None:
                _finish_batch(run, pending_async, total)
            pending_async = current
        if pending_async is not None:
            _finish_batch(run, pending_async, total)
        _apply_csv_to_existing(run)
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        run.flush_progress(total)
        job.done, job.total = run.done, total
        job_finish(job=job, result=run.counts, error=f"Import stopped: {type(exc).__name__}: {exc}")
        return run.counts
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    run.done = total
    run.flush_progress(total)
    if params.get("staging_dir"):
        shutil.rmtree(params["staging_dir"], ignore_errors=True)
    c = run.counts
    job.message = (f"{c['imported']} imported, {c['duplicates']} duplicates, {c['rejected']} rejected, "
                   f"{c['labeled']} labeled")  # fmt: skip
    job.done = job.total = total
    job.save(update_fields=["message", "total"])
    job_finish(job=job, result=c)
    return c


def _finish_batch(run: _Run, pending: tuple, total: int) -> None:
    consumed, batch, results = pending
    if not isinstance(results, list):
        results = results.get()
    if batch:
        _store_batch(run, batch, results)
    run.done += consumed
    run.flush_progress(total)


# --------------------------------------------------------------------------------------------
# Creating import jobs (views and commands)
# --------------------------------------------------------------------------------------------


STAGING_TOKEN = re.compile(r"upload-[A-Za-z0-9_]{4,40}")
CSV_MAX_BYTES = 50 * 1024 * 1024


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


def staged_uploads_add(
    *, directory: Path, uploads: list, names: list[str] | None = None, oversized: list[str] | None = None
) -> int:
    """Save browser uploads into a staging folder and note them in its manifest; returns how many were staged.

    Images over LABELLOOP_MAX_UPLOAD_BYTES (or zips over LABELLOOP_MAX_ZIP_BYTES) are not kept: they are
    recorded as rejections. `oversized` names files the browser already refused to send for that reason.
    """
    staged = 0
    lines = []
    for name in oversized or []:
        lines.append({"name": name[:500], "reason": "file is over the upload size limit; not uploaded"})
    # Browsers strip folders from multipart file names; `names` carries the relative paths when known.
    names = names if names and len(names) == len(uploads) else [u.name for u in uploads]
    for upload, given in zip(uploads, names, strict=True):
        parts = (given or upload.name or "").replace("\\", "/").split("/")
        name = "/".join(p for p in parts if p not in ("", ".", ".."))[:500] or "unnamed"
        lower = name.lower()
        kind = "zip" if lower.endswith(".zip") else "csv" if lower.endswith(".csv") else "file"
        limit = {"zip": settings.LABELLOOP_MAX_ZIP_BYTES, "csv": CSV_MAX_BYTES}.get(
            kind, settings.LABELLOOP_MAX_UPLOAD_BYTES
        )
        if upload.size > limit:
            lines.append({"name": name, "reason": f"file is {_megabytes(upload.size)}, over the "
                          f"{_megabytes(limit)} limit"})  # fmt: skip
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
    with open(directory / "manifest.jsonl", "a", encoding="utf-8") as manifest:
        for line in lines:
            manifest.write(json.dumps(line, ensure_ascii=False) + "\n")
    return staged


def import_job_from_staging(*, project: Project, user, directory: Path, labels_from_folders: bool = False) -> Job:
    """Turn a staging folder into a queued import job (CSV files in it become the labels CSV)."""
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
    if csvs:
        csv_path = directory / "labels.csv"
        with open(csv_path, "wb") as out:
            for path in csvs:
                data = path.read_bytes()
                out.write(data.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n") + b"\n")
    return import_job_create(
        project=project,
        created_by=user,
        sources=sources,
        csv_path=str(csv_path) if csv_path else None,
        labels_from_folders=labels_from_folders,
        staging_dir=str(directory),
        errors=errors,
    )


def import_job_create(
    *,
    project: Project,
    created_by=None,
    sources: list[dict],
    csv_path: str | None = None,
    labels_from_folders: bool = False,
    staging_dir: str | None = None,
    errors: list[dict] | None = None,
) -> Job:
    params = {
        "sources": sources,
        "csv": csv_path,
        "labels_from_folders": labels_from_folders,
        "staging_dir": staging_dir,
        "errors": errors or [],
    }
    return job_create(project=project, kind=JobKind.IMPORT, created_by=created_by, params=params)


def import_job_enqueue(*, job: Job) -> None:
    """Queue the job's task after commit; if the broker is unreachable the job fails with a clear message."""
    from labeling.tasks import import_run_task

    def send() -> None:
        try:
            import_run_task.apply_async((job.pk,), retry=False)
        except Exception as exc:
            # The broker (Redis) is down or refused: say so instead of leaving a job queued forever.
            if not _is_broker_error(exc):
                raise
            logger.warning("could not queue import job %s: %s", job.pk, exc)
            fresh = Job.objects.get(pk=job.pk)
            if fresh.status == JobStatus.QUEUED:
                job_finish(job=fresh, error="Could not queue the import: the task queue (Redis) is unreachable. "
                           "Nothing was imported; try again when it is back.")  # fmt: skip

    transaction.on_commit(send)


def _is_broker_error(exc: Exception) -> bool:
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    return isinstance(exc, OperationalError | ConnectionError | TimeoutError | RedisError)


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

"""The state of one import run and its batch engine: files gathered from the job's sources, read in bounded batches,
stored item by item (a bad file is rejected by name and reason, never half stored); a CSV's rows for items already
there are applied by labeling.services.imports.csv_rows. labeling.services.imports.run drives it on decoder threads."""

from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction

from labeling.models import Item, Job, LabelClass, Project
from labeling.selectors.classes import class_path_parse, classes_by_path
from labeling.selectors.import_reasons import reason_kind
from labeling.services.imports.class_names import ClassNames
from labeling.services.imports.duplicates import kept_labels, label_conflict
from labeling.services.imports.folder_classes import FolderClasses
from labeling.services.imports.items import NewItem, duplicate_reason, items_store, new_item, new_splits
from labeling.services.imports.new_classes import NewClasses
from labeling.services.imports.relabeled import Relabeled
from labeling.services.imports.sources import Entry
from labeling.services.imports.validation import INTERRUPTIONS, Inspected, Limits, entry_over_limit, zip_entry_reason
from labeling.services.projects import label_classes_from_paths

logger = logging.getLogger(__name__)

BATCH_FILES = 100  # also how often the progress the page polls moves
BATCH_BYTES = 128 * 1024 * 1024
MAX_STORED_ERRORS = 5000  # names kept in job.errors; the counts by reason cover every file
MAX_NAMES_PER_REASON = 500


@dataclass
class _Pending:
    entry: Entry
    data: bytes
    sha256: str
    copy_of: Entry | None = None  # a copy of a file read before in this run: judged once that file's fate is known


@dataclass
class _Run:
    project: Project
    job: Job
    limits: Limits
    progress: Callable[[int, int], None] | None
    csv_labels: dict[str, list[str]] = field(default_factory=dict)
    classes: dict[str, LabelClass] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"imported": 0, "rejected": 0, "duplicates": 0, "labeled": 0, "label_errors": 0}
    )
    by_reason: dict[str, int] = field(default_factory=dict)  # reason_kind -> files, for every file
    done: int = 0
    total: int = 0
    seen: dict[str, Entry] = field(default_factory=dict)  # sha256 -> the file kept, within this run
    stored_names: set[str] = field(default_factory=set)  # the files this run stored (since a resume)
    matched_csv: set[str] = field(default_factory=set)
    shared_csv: set[str] = field(default_factory=set)  # CSV rows that several files may carry: csv_rows applies them
    duplicate_of: dict[str, str] = field(default_factory=dict)  # a skipped duplicate's name -> the kept file's name
    refused: dict[str, str] = field(default_factory=dict)  # sha256 of a file refused in this run -> why
    new_classes: NewClasses = field(default_factory=lambda: NewClasses(known=set()))
    names: ClassNames = field(default_factory=lambda: ClassNames(by_name={}))  # a CSV's bare names: class_names
    folder_classes: FolderClasses = field(default_factory=FolderClasses)  # which folder became which class
    relabeled: Relabeled = field(default_factory=Relabeled)  # import labels a CSV replaced
    fronted: int = 0  # images put at the front of the queue so far (job.params["to_front"]: import_job_create)
    labels_csv: dict | None = None  # a labels CSV read as Windows-1252: csv_encoding.cp1252_note

    def reject(self, name: str, reason: str, *, duplicate: bool = False) -> None:
        self.counts["duplicates" if duplicate else "rejected"] += 1
        self._error(name, reason)

    def refuse(self, entry: Entry, reason: str) -> None:
        """Reject `entry` for `reason`, named as the job names it; a zip in a zip is not called a renamed zip."""
        name = self.shown(entry)
        self.reject(name, zip_entry_reason(reason) if name != entry.name else reason)

    def shown(self, entry: Entry) -> str:
        """How the job's problems name a file: a zip's entry with its zip ("photos.zip:cat.png"), as sources.py names
        the entries it refuses; the item keeps the entry's own name."""
        return f"{entry.archive}:{entry.name}" if entry.archive else entry.name

    def _error(self, name: str, reason: str) -> None:
        kind = reason_kind(reason)
        self.by_reason[kind] = self.by_reason.get(kind, 0) + 1
        if self.by_reason[kind] <= MAX_NAMES_PER_REASON and len(self.job.errors) < MAX_STORED_ERRORS:
            self.job.errors.append({"name": name, "reason": reason})  # its kind: job_errors

    def imported(self, entries: list[Entry]) -> None:
        self.counts["imported"] += len(entries)
        for entry in entries:
            self.stored_names.add(entry.name)
            if entry.label_paths is None:  # an export's multi-label metadata is no folder's class
                self.folder_classes.stored(entry.name, entry.label_path)

    def result(self) -> dict:
        """job.result: the counts, and how many files each kind of problem hit (most first)."""
        by_reason = dict(sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
        made, folders = self.new_classes.report(), self.folder_classes.report()
        return {
            **self.counts,
            "rejected_by_reason": by_reason,
            **({"new_classes": made} if made else {}),
            **({"folder_classes": folders} if folders else {}),
            **self.relabeled.report(),
            **({"labels_csv": self.labels_csv} if self.labels_csv else {}),
        }

    def label_error(self, name: str, reason: str) -> None:
        self.counts["label_errors"] += 1
        self._error(name, reason)

    def classes_for(self, entry: Entry) -> list[LabelClass]:
        key = self._csv_key(entry.name)
        if key is not None and key not in self.shared_csv:
            self.matched_csv.add(key)
            return self.csv_classes(self.shown(entry), self.csv_labels[key])
        return self._resolve(self.shown(entry), self._given(entry))

    def csv_classes(self, name: str, paths: list[str]) -> list[LabelClass]:
        """The classes a CSV row names (a bare name by class_names' rule), created if new."""
        paths, problem = self.names.resolve(paths, existing=self.classes)
        if problem:
            self.label_error(name, problem)
            return []
        return self._resolve(name, paths)

    def _csv_key(self, name: str) -> str | None:
        return next((key for key in (name, name.rsplit("/", 1)[-1]) if key in self.csv_labels), None)

    def _given(self, entry: Entry) -> list[str]:
        """The label an export's metadata or the file's folders give it (stored paths, unchecked)."""
        if entry.label_paths is not None:
            return entry.label_paths
        return [entry.label_path] if entry.label_path else []

    def label_asked(self, entry: Entry) -> list[str]:
        """The label `entry` asks for, its CSV row's first, as stored paths, changing nothing: to compare copies."""
        key = self._csv_key(entry.name)
        paths = self.names.resolve(self.csv_labels[key], existing=self.classes)[0] if key else self._given(entry)
        return sorted({_parsed(p) for p in paths})

    def duplicate(
        self, entry: Entry, kept: str, kept_paths: list[str] | None, *, earlier: bool, shown: str = ""
    ) -> None:
        """Skip `entry`, a copy of the file `kept` (labeled `kept_paths`; None: not looked up, as `entry` gives no
        label; `shown`: its name in the job), saying so when their labels differ (labeling.services.imports.duplicates).
        A copy that a CSV row labels is reported with the rows (csv_rows.csv_rows_apply)."""
        given = [] if self._csv_key(entry.name) is not None else self.label_asked(entry)
        shown = shown or kept
        reason = label_conflict(shown, kept_paths or [], given, earlier=earlier) if given else None
        self.duplicate_of[entry.name] = kept
        self.reject(self.shown(entry), reason or f"duplicate of {shown}", duplicate=True)

    def duplicate_in_run(self, entry: Entry, kept: Entry, sha256: str) -> None:
        """Skip `entry`, a copy of `kept` read before in this run; when `kept` was itself a copy of a stored file,
        `entry` is that file's copy. A copy of a refused file (empty, cut short) is refused the same, not a copy."""
        if (reason := self.refused.get(sha256)) is not None:
            return self.refuse(entry, reason)
        stored = Item.objects.filter(project=self.project, sha256=sha256).values_list("original_name", flat=True)
        if (before := stored.first()) is not None and kept.name not in self.stored_names:
            self.duplicate(entry, before, kept_labels(self.project, {before}).get(before), earlier=True)
        else:
            self.duplicate(entry, kept.name, self.label_asked(kept), earlier=False, shown=self.shown(kept))

    def _resolve(self, name: str, paths: list[str]) -> list[LabelClass]:
        """The classes for one file's label paths, created if new; a bad path leaves the file unlabeled.

        Classes are created all or nothing per file, so a refused label leaves no stray parent class.
        """
        if not paths:
            return []
        try:
            paths = list(dict.fromkeys(class_path_parse(p) for p in paths))
        except ValueError as exc:
            self.label_error(name, f"label not applied: {exc}")
            return []
        if len(paths) > 1 and not self.project.is_multi_label:
            self.label_error(name, f"{len(paths)} labels for a single-label project; left unlabeled")
            return []
        missing = [p for p in paths if p not in self.classes]
        for attempt in range(2):
            if not missing:
                break
            try:
                with transaction.atomic():
                    self.classes = label_classes_from_paths(project=self.project, paths=missing)
                self.new_classes.made(missing)
                break
            except IntegrityError:  # another import created one of them a moment ago: look again, once
                self.classes = _classes_by_path(self.project)
                missing = [p for p in paths if p not in self.classes]
                if attempt:
                    self.label_error(name, "could not create class: it was being created by another import")
                    return []
            except (ValidationError, DataError) as exc:
                reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.label_error(name, f"could not create class: {reason}"[:300])
                return []
        if any(p not in self.classes for p in paths):
            self.label_error(name, "could not create class")
            return []
        self.new_classes.used(paths)
        return [self.classes[p] for p in paths]

    def flush_progress(self) -> None:
        """One UPDATE per batch: the UI polls it and a resumed job continues from `done`."""
        if self.progress:
            self.progress(self.done, self.total)
        Job.objects.filter(pk=self.job.pk).update(
            done=self.done, total=self.total, errors=self.job.errors, result=self.result(),
            message=self.summary(),
        )  # fmt: skip

    def summary(self) -> str:
        """The job's message, while it runs and once it is done: duplicates are skipped, not rejected. A job with
        no files (a labels CSV for images already imported) says what its labels did: "4 labels applied, 1 replaced"."""
        c, replaced = self.counts, self.relabeled.words()
        if not self.total and self.csv_labels:
            parts = [f"{c['labeled']} label{'s' if c['labeled'] != 1 else ''} applied"]
            if self.relabeled.count:
                parts.append(f"{self.relabeled.count} replaced")
            if c["label_errors"]:
                parts.append(f"{c['label_errors']} not applied")
            return ", ".join(parts)
        files = (
            f"{c['imported']} imported, {c['duplicates']} duplicates, {c['rejected']} rejected, {c['labeled']} labeled"
        )
        return f"{files}, {replaced}" if replaced else files


def _classes_by_path(project: Project) -> dict[str, LabelClass]:
    return classes_by_path(LabelClass.objects.filter(project=project))


def _read_batches(entries: list[Entry], run: _Run) -> Iterator[tuple[int, list[_Pending]]]:
    """Read files in bounded batches; size and duplicate checks happen here, before decoding."""
    batch: list[_Pending] = []
    batch_bytes = 0
    consumed = 0
    for entry in entries:
        consumed += 1
        try:
            data = entry.read(run.limits.max_bytes)
        except (OSError, zipfile.BadZipFile, zlib.error, RuntimeError, EOFError) as exc:
            run.reject(run.shown(entry), f"could not be read ({exc})"[:300])
            continue
        if len(data) > run.limits.max_bytes:
            run.reject(run.shown(entry), entry_over_limit(entry.size, run.limits.max_bytes))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        kept = run.seen.setdefault(sha256, entry)
        batch.append(_Pending(entry, data, sha256) if kept is entry else _Pending(entry, b"", sha256, copy_of=kept))
        batch_bytes += len(data) if kept is entry else 0
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
    # One query for the whole batch: the split of each new image (near-duplicates share one: items.py); sent to the
    # front of the queue, in train unless a holdout image is near it, so no copy of a holdout image is trained on
    splits = new_splits(
        project=project, to_front=bool(run.job.params.get("to_front")),
        images=[(p.sha256, r.phash) for p, r in zip(batch, results, strict=True)
                if not p.copy_of and not isinstance(r, str) and p.sha256 not in existing],
    )  # fmt: skip
    # The labels of the stored files that a copy with a label of its own duplicates, in one query
    asking = [p for p in batch if p.sha256 in existing and not p.copy_of and run.label_asked(p.entry)]
    labels = kept_labels(project, {existing[p.sha256] for p in asking})
    ready: list[tuple[Item, _Pending, Inspected, list[LabelClass]]] = []
    for pending, result in zip(batch, results, strict=True):
        if pending.copy_of is not None:
            continue  # judged once the batch is stored (run._finish_batch)
        if isinstance(result, str):
            run.refused[pending.sha256] = result
            run.refuse(pending.entry, result)
        elif pending.sha256 in existing:
            kept = existing[pending.sha256]
            run.duplicate(pending.entry, kept, labels.get(kept), earlier=True)
        else:
            classes = run.classes_for(pending.entry)
            item = new_item(project=project, name=pending.entry.name, sha256=pending.sha256, info=result,
                             labeled=bool(classes), split=splits[pending.sha256])  # fmt: skip
            if run.job.params.get("to_front"):
                run.fronted += 1
                # Above the strategy's batch (priorities up to 2: training.ml.strategies.rank_pool), first given first
                # (a holdout image's copy at the front of the holdout pool)
                item.priority = 2.0 + 1.0 / run.fronted
            ready.append((item, pending, result, classes))
    if not ready:
        return
    try:
        items_store([NewItem(item, pending.data, info, classes) for item, pending, info, classes in ready])
    except INTERRUPTIONS:
        raise
    except Exception:
        # A concurrent import of the same file (unique constraint) or a storage/DB hiccup:
        # fall back to one item at a time so only the offending files are rejected.
        _store_one_by_one(run, ready)
        return
    run.imported([pending.entry for _, pending, _, _ in ready])
    run.counts["labeled"] += sum(1 for r in ready if r[3])


def _store_one_by_one(run: _Run, ready: list) -> None:
    for item, pending, info, classes in ready:
        try:
            items_store([NewItem(item, pending.data, info, classes)])
        except IntegrityError:
            run.reject(run.shown(pending.entry), duplicate_reason(run.project, pending.sha256), duplicate=True)
            continue
        except INTERRUPTIONS:
            raise
        except Exception as exc:
            logger.exception("storing %s failed", pending.entry.name)
            run.refused[pending.sha256] = f"could not be stored ({type(exc).__name__}: {exc})"[:300]
            run.refuse(pending.entry, run.refused[pending.sha256])
            continue
        run.imported([pending.entry])
        run.counts["labeled"] += bool(classes)


def _parsed(path: str) -> str:
    """A label path in its stored spelling, or as given when it is no class path (its refusal says why)."""
    try:
        return class_path_parse(path)
    except ValueError:
        return path

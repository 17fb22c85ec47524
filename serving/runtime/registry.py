"""Every project's active model as an onnxruntime session, reloaded when another version becomes active.

A request asks `ModelRegistry.model_for(project_id)`; at most every LABELLOOP_SERVING_RELOAD_SECONDS per project
that looks up the active version (one indexed query) and, when it changed, loads the new version's ONNX from its
model export (the zip the model exports page makes: training/services/exports.py). A request keeps the
`LoadedModel` it started with, so a swap never changes a model under a request in flight.

The ONNX and config.json of a version are copied to LABELLOOP_DATA_ROOT/serving-cache/<version id>-<its creation
time>/ (serving.selectors.models.version_cache_name) the first time, so the service still starts after the export's
file expired (LABELLOOP_EXPORT_TTL_HOURS). Each time a process loads a version it sweeps the folders of versions
no project serves any more (unused for an hour): one ONNX per version a project ever activated would otherwise
fill the disk. A version made active again is extracted again from its export, or exported again.

A newly active version with no export yet (a training run just made it): the service asks a worker to export it
through the model-export path (`model_export_start`, LABELLOOP_SERVING_AUTO_EXPORT) and keeps answering with the
version it has until the export is there. A process that has loaded none (restarted, or the project's first request)
answers with the newest older version that has an export; only a project with no exported version gets 409.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from labeling.storage_utils import cache_entries_sweep, cache_entry_touch
from serving.selectors.models import (
    active_version_of,
    exported_versions_before,
    model_export_zip_of,
    version_cache_name,
    version_cache_names,
    version_classes,
    version_named,
)
from training.ml.export_files import ONNX_FILES, int8_files_for_this_cpu

logger = logging.getLogger(__name__)

EMBEDDING_OUTPUT = "embedding"
SERVED_MARKER = "served.json"  # in a cache folder: {"precision", "file"}, written once the folder is complete
EXPORT_RETRY_SECONDS = 600.0  # a failed export is asked for again after this long, not on every check


class ModelUnavailable(Exception):
    """No model to serve for the project (409): `reason` says what to do."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


NO_MODEL = "this project has no active model yet; train one on the model page"
NOT_LOADABLE = "the active version's exported model could not be loaded; export it again on the model exports page"
NO_EXPORT = (
    "no exported model for the active version; export it on the model exports page "
    "(the service has asked a worker to export it)"
)


@dataclass
class LoadedModel:
    version_pk: int
    number: int
    session: object  # onnxruntime.InferenceSession
    input_name: str
    logits_name: str
    embedding_name: str | None
    class_names: list[str]
    preprocessing: dict
    multi_label: bool
    onnx_file: str = ONNX_FILES["fp32"]  # the export's file it runs (LABELLOOP_SERVING_PRECISION)

    @property
    def precision(self) -> str:
        """What `onnx_file` computes in, as answers say it: "fp32", "fp16" or "int8" (both INT8 files)."""
        return file_precision(self.onnx_file)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (N x C) and the embedding (N x D) when the graph has that output."""
        names = [self.logits_name] + ([self.embedding_name] if self.embedding_name else [])
        outputs = self.session.run(names, {self.input_name: batch})
        logits = outputs[0].astype(np.float64)
        if self.multi_label:
            probs = 1.0 / (1.0 + np.exp(-logits))
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = shifted / shifted.sum(axis=1, keepdims=True)
        return probs, (outputs[1] if self.embedding_name else None)


@dataclass
class _Entry:
    checked_at: float
    model: LoadedModel | None = None
    version_pk: int | None = None
    loaded: str = ""  # version_cache_name of `model`: a pk alone may name another database's version
    reason: str = ""
    export_requested: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def file_precision(onnx_file: str) -> str:
    """The precision of one of the export's ONNX files (ONNX_FILES): "model.int8.vnni.onnx" -> "int8"."""
    fmt = next((f for f, name in ONNX_FILES.items() if name == onnx_file), "fp32")
    return fmt.split("_", 1)[0]


def serving_cache_root() -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT) / "serving-cache"


def _cache_dir(version_pk: int) -> Path | None:
    name = version_cache_name(version_pk=version_pk)
    return None if name is None else serving_cache_root() / name


def serving_cache_sweep(*, dry_run: bool = False) -> list[str]:
    """Remove the extracted exports of versions that are no project's active version (and were not loaded by
    any process within the last hour); returns their folder names."""
    return cache_entries_sweep(serving_cache_root(), keep=version_cache_names(active_only=True), dry_run=dry_run)


def served_precision() -> str:
    return "int8" if settings.LABELLOOP_SERVING_PRECISION == "int8" else "fp32"


def _served_candidates() -> list[str]:
    """The export's ONNX files this process may serve, best first: FP32's, or the INT8 files that run right on this
    CPU and then FP32's (an export from before INT8 existed)."""
    if served_precision() == "int8":
        return [*int8_files_for_this_cpu(), ONNX_FILES["fp32"]]
    return [ONNX_FILES["fp32"]]


def served_file(folder: Path) -> Path | None:
    """The ONNX file of a complete cache folder for this precision (its SERVED_MARKER, written last, names it), or
    None. A folder filled before the marker existed holds FP32's model.onnx."""
    marker = folder / SERVED_MARKER
    if not (folder / "config.json").is_file():
        return None
    if marker.is_file():
        try:
            served = json.loads(marker.read_text())
        except (OSError, ValueError):
            return None
        path = folder / str(served.get("file", ""))
        ok = served.get("precision") == served_precision() and served.get("file") in _served_candidates()
        return path if ok and path.is_file() else None
    legacy = folder / ONNX_FILES["fp32"]
    return legacy if served_precision() == "fp32" and legacy.is_file() else None


def served_model_file(*, project_id: int, version_pk: int, model_file: str | None = None) -> Path | None:
    """The ONNX file this process serves for the version, beside its config.json (the local cache, filled from its
    export zip). Load this path, not the marker read again: a service of the other precision may rewrite the
    marker of the shared folder meanwhile (it leaves this file in place).

    `model_file` asks for one file of the export by name instead (a drift check embeds with the file that answered
    the logged predictions, whatever this process would serve); None when the export has no such file."""
    folder = _cache_dir(version_pk)
    if folder is None:  # the version was deleted meanwhile
        return None
    if model_file is not None:
        if model_file not in ONNX_FILES.values():
            return None
        if (folder / model_file).is_file() and (folder / "config.json").is_file():
            return folder / model_file
    elif (found := served_file(folder)) is not None:
        return found
    key = model_export_zip_of(project_id=project_id, version_pk=version_pk)
    if key is None:
        return None
    from labeling.services.exports import export_storage

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".load-") as tmp:
        local = Path(tmp) / "export.zip"
        try:
            with export_storage().open(key, "rb") as src, local.open("wb") as out:
                while chunk := src.read(1024 * 1024):
                    out.write(chunk)
        except FileNotFoundError:
            return None
        with zipfile.ZipFile(local) as zf:
            members = {n.rsplit("/", 1)[-1]: n for n in zf.namelist()}
            candidates = [model_file] if model_file is not None else _served_candidates()
            if model_file is None:
                refused = _outside_tolerance(zf, members)
                if refused & set(candidates):
                    logger.warning(
                        "%s: not serving %s, outside the export's own tolerance; serving %s (answers say so)",
                        version_named(version_pk=version_pk), sorted(refused & set(candidates)), ONNX_FILES["fp32"],
                    )  # fmt: skip
                candidates = [name for name in candidates if name not in refused] or [ONNX_FILES["fp32"]]
            chosen = next((name for name in candidates if name in members), None)
            if chosen is None or "config.json" not in members:
                return None  # not a model export: served as "no export" (export it again)
            for name in (chosen, "config.json"):
                with zf.open(members[name]) as src, (Path(tmp) / name).open("wb") as out:
                    while chunk := src.read(1024 * 1024):
                        out.write(chunk)
        os.replace(Path(tmp) / chosen, folder / chosen)
        os.replace(Path(tmp) / "config.json", folder / "config.json")
        if model_file is not None:
            return folder / chosen  # a file asked for by name: the folder's marker still names what is served
        # The marker last: its presence says the folder is complete (another process may be filling it too).
        (Path(tmp) / SERVED_MARKER).write_text(json.dumps({"precision": served_precision(), "file": chosen}))
        os.replace(Path(tmp) / SERVED_MARKER, folder / SERVED_MARKER)
    return folder / chosen


def _outside_tolerance(zf: zipfile.ZipFile, members: dict[str, str]) -> set[str]:
    """The export's files that its own measurement put outside their tolerance (manifest.json's measured rows): an
    INT8 file whose top class agreed with FP32 on 88 % of the images, where 98 % is promised, is not served; the
    service falls back to the next candidate, FP32's model.onnx at last."""
    if "manifest.json" not in members:
        return set()
    try:
        measured = json.loads(zf.read(members["manifest.json"])).get("measured") or {}
        rows = measured.get("formats") or []
        return {
            ONNX_FILES[r["format"]]
            for r in rows
            if r.get("within_tolerance") is False and r.get("format") in ONNX_FILES
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def served_class_names(config: dict, *, version_pk: int) -> list[str]:
    """The class names the service answers with, in output order: each class's stored path ("a/b/c", as dataset
    exports and the REST API spell it; training.selectors.classes.model_class_paths). An export made before
    config.json said stored paths holds display paths ("a / b / c"); they are read as stored paths here, in memory,
    and the file on disk stays as it was."""
    from training.selectors.classes import model_class_paths

    found = version_classes(version_pk=version_pk)
    class_ids = (config.get("labelloop") or {}).get("class_ids") or (found[0] if found else [])
    return model_class_paths(names=list(config["class_names"]), class_ids=class_ids, tree=found[1] if found else {})


def load_model(*, onnx_file: Path, version_pk: int, number: int) -> LoadedModel:
    import onnxruntime as ort

    config = json.loads((onnx_file.parent / "config.json").read_text())
    options = ort.SessionOptions()
    if settings.LABELLOOP_SERVING_ORT_THREADS > 0:
        options.intra_op_num_threads = settings.LABELLOOP_SERVING_ORT_THREADS
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    logits = "logits" if "logits" in outputs else outputs[0]
    return LoadedModel(
        version_pk=version_pk,
        number=number,
        session=session,
        input_name=session.get_inputs()[0].name,
        logits_name=logits,
        embedding_name=EMBEDDING_OUTPUT if EMBEDDING_OUTPUT in outputs else None,
        class_names=served_class_names(config, version_pk=version_pk),
        preprocessing=dict(config["preprocessing"]),
        multi_label=bool(config.get("multi_label")),
        onnx_file=onnx_file.name,
    )


class ModelRegistry:
    def __init__(self, *, reload_seconds: float | None = None):
        self.reload_seconds = settings.LABELLOOP_SERVING_RELOAD_SECONDS if reload_seconds is None else reload_seconds
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def model_for(self, project_id: int) -> LoadedModel:
        """The model serving `project_id` now; raises ModelUnavailable (no active version, or not exported)."""
        entry = self._entries.get(project_id)
        if entry is None:
            with self._lock:
                entry = self._entries.setdefault(project_id, _Entry(checked_at=-1e18))
        if time.monotonic() - entry.checked_at >= self.reload_seconds:
            with entry.lock:  # one request per project checks; the others wait for its answer
                if time.monotonic() - entry.checked_at >= self.reload_seconds:
                    self._refresh(project_id, entry)
        model = entry.model
        if model is None:
            raise ModelUnavailable(entry.reason or NO_MODEL)
        return model

    def _refresh(self, project_id: int, entry: _Entry) -> None:
        active = active_version_of(project_id=project_id)
        if active is None:
            entry.model, entry.version_pk, entry.reason = None, None, NO_MODEL
        elif entry.model is None or active.cache_name != entry.loaded:
            # Until the new version loads, the version already loaded keeps answering (answers name it).
            onnx_file = served_model_file(project_id=project_id, version_pk=active.pk)
            serving = active
            if onnx_file is None:
                entry.version_pk, entry.reason = active.pk, NO_EXPORT
                self._request_export(project_id, active, entry)
                if entry.model is None:  # nothing loaded yet in this process: the newest older export answers
                    serving, onnx_file = self._older_export(project_id, active)
            if onnx_file is not None:
                try:
                    loaded = load_model(onnx_file=onnx_file, version_pk=serving.pk, number=serving.number)
                except Exception:  # a corrupt file: say so, try again at the next check
                    logger.exception("could not load v%s of project %s from %s", serving.number, project_id, onnx_file)
                    if serving is active:
                        entry.version_pk, entry.reason = active.pk, NOT_LOADABLE
                else:
                    entry.model, entry.version_pk, entry.reason = loaded, serving.pk, ""
                    entry.loaded = serving.cache_name
                    logger.info("serving project %s with v%s (%s)", project_id, serving.number, loaded.onnx_file)
                    cache_entry_touch(onnx_file.parent)
                    try:
                        swept = serving_cache_sweep()
                    except Exception:  # a full sweep is not worth a failed request
                        logger.exception("could not sweep the serving cache")
                    else:
                        if swept:
                            logger.info("removed %s unused model folders from the serving cache", len(swept))
        entry.checked_at = time.monotonic()

    @staticmethod
    def _older_export(project_id: int, active):
        """(version, ONNX file) of the newest version older than the active one that has a model export."""
        for older in exported_versions_before(project_id=project_id, number=active.number):
            if (onnx_file := served_model_file(project_id=project_id, version_pk=older.pk)) is not None:
                return older, onnx_file
        return active, None

    def _request_export(self, project_id: int, active, entry: _Entry) -> None:
        """Ask a worker to export the active version once (the export job coalesces identical requests)."""
        if not settings.LABELLOOP_SERVING_AUTO_EXPORT:
            return
        last = entry.export_requested.get(active.pk)
        if last is not None and time.monotonic() - last < EXPORT_RETRY_SECONDS:
            return
        entry.export_requested[active.pk] = time.monotonic()
        from labeling.models import Project
        from training.services.exports import model_export_start

        try:
            job = model_export_start(project=Project.objects.get(pk=project_id), user=None, number=active.number)
        except Exception:  # a limit reached, a version deleted meanwhile: try again later, keep serving
            logger.warning(
                "could not request the export of v%s of project %s", active.number, project_id, exc_info=True
            )
        else:
            logger.info("requested the ONNX export of v%s of project %s (job %s)", active.number, project_id, job.pk)

"""Importing a Labelloop dataset export: its labels come back with their hierarchy and spelling.

An ImageFolder export names each class folder after the class path, flattened and made safe for every file
system ("animals/mammals/cat" is `animals__mammals__cat`, "plane café?" is `plane_café`); an `hf` export keeps
every split's labels in `metadata.jsonl`. Read as plain folders, such an export would come back as flat classes
under the folder names. Its `manifest.json` (written by labeling.services.exports) says which folder is which
class path, so the import uses the manifest instead: a zip of the export, or its unzipped folder, dropped or on
the server, gives the new project the same taxonomy. The manifest and metadata files are not images and are not
reported as refused files.

Labels are applied only when the import takes labels from folders, as for any ImageFolder; a labels CSV still
wins over them, file by file.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from labeling.services.imports.sources import Entry

MANIFEST = "manifest.json"
METADATA = "metadata.jsonl"
MAX_LABEL_FILE_BYTES = 64 * 1024 * 1024  # ~500,000 images of metadata.jsonl
EXPORT_SPLITS = {"imagefolder": ("train", "val", "test"), "hf": ("train", "validation", "test")}


def _manifest(entry: Entry) -> dict | None:
    """The parsed manifest when `entry` is a Labelloop dataset export's, else None (then it is just a file)."""
    try:
        data = json.loads(entry.read(MAX_LABEL_FILE_BYTES))  # over the cap it is cut short and does not parse
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") not in EXPORT_SPLITS or "dataset_hash" not in data:
        return None
    classes = data.get("classes")
    if not isinstance(classes, list) or not all(
        isinstance(c, dict) and isinstance(c.get("folder"), str) and isinstance(c.get("path"), str) for c in classes
    ):
        return None
    return data


def _metadata_labels(entry: Entry, errors: list[dict]) -> dict[str, list[str]]:
    """file_name -> class paths from one split's metadata.jsonl (hf export); a bad line is reported, not fatal."""
    try:
        raw = entry.read(MAX_LABEL_FILE_BYTES)
    except OSError as exc:
        errors.append({"name": entry.name, "reason": f"could not be read ({exc}): its images stay unlabeled"})
        return {}
    if len(raw) > MAX_LABEL_FILE_BYTES:
        errors.append({"name": entry.name, "reason": "over 64 MiB: its images stay unlabeled"})
        return {}
    labels: dict[str, list[str]] = {}
    for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name = row["file_name"]
            paths = row["labels"] if "labels" in row else [row["label"]]
            if not isinstance(name, str) or not all(isinstance(p, str) for p in paths):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            reason = "not a file_name and label: its image stays unlabeled"
            errors.append({"name": f"{entry.name} line {number}", "reason": reason})
            continue
        labels[name] = list(paths)
    return labels


def export_entries(entries: list[Entry], *, labels_from_folders: bool, errors: list[dict]) -> list[Entry]:
    """`entries` with every Labelloop export among them recognised by its manifest: its manifest and metadata
    files dropped, and, with `labels_from_folders`, each of its images labeled with the class path the export
    wrote it under. Everything else is returned as it came."""
    roots: dict[tuple[str, ...], dict] = {}
    for entry in entries:
        parts = PurePosixPath(entry.name).parts
        if parts and parts[-1] == MANIFEST and (manifest := _manifest(entry)) is not None:
            roots[parts[:-1]] = manifest
    if not roots:
        return entries
    metadata = {
        PurePosixPath(e.name).parts[:-1]: e
        for e in entries
        if PurePosixPath(e.name).name == METADATA and PurePosixPath(e.name).parts[:-2] in roots
    }
    hf_labels = {where: _metadata_labels(e, errors) for where, e in metadata.items()} if labels_from_folders else {}
    folders = {root: {c["folder"]: c["path"] for c in manifest["classes"]} for root, manifest in roots.items()}
    kept: list[Entry] = []
    for entry in entries:
        parts = PurePosixPath(entry.name).parts
        root = next((parts[:k] for k in range(len(parts) - 1, -1, -1) if parts[:k] in roots), None)
        if root is None:
            kept.append(entry)
            continue
        rel = parts[len(root) :]
        if rel == (MANIFEST,) or (len(rel) == 2 and rel[1] == METADATA):
            continue
        manifest = roots[root]
        if labels_from_folders and len(rel) >= 2 and rel[0] in EXPORT_SPLITS[manifest["format"]]:
            if manifest["format"] == "imagefolder":
                path = folders[root].get(rel[1]) if len(rel) == 3 else None
                entry.label_path = path or entry.label_path
            else:  # the split folder is no class: an image metadata.jsonl does not label stays unlabeled
                entry.label_path = None
                entry.label_paths = hf_labels.get(root + rel[:1], {}).get(rel[-1])
        kept.append(entry)
    return kept

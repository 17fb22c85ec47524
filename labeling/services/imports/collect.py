"""What an import job reads: its files as Entries (uploads, zips, server folders, an export's metadata), its labels CSV,
and with labels_from_folders the report of which folder became which class. labeling.services.imports.run calls it
once per run (and again, the same, when a redelivered job resumes)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path, PurePosixPath

from labeling.constants import file_name_cleaned
from labeling.services.imports.exported import export_entries
from labeling.services.imports.folder_classes import DROPPED, FolderClasses, top_folder_left_out
from labeling.services.imports.sources import (
    Entry,
    file_size,
    folder_entries,
    folder_label,
    is_junk,
    label_csv_parse,
    read_file,
    zip_entries,
)


def import_sources_collect(
    params: dict,
    errors: list[dict],
    csv_errors: list[dict],
    *,
    root_classes: Collection[str] = (),
    read_as_1252: list[str] | None = None,
) -> tuple[list[Entry], dict[str, list[str]], FolderClasses]:
    """The job's files, its labels CSV, and with labels_from_folders the report of which folder became which class
    (folder_classes: `root_classes`, the project's root class names, are never a top folder left out). The words of
    a labels CSV read as Windows-1252 go in `read_as_1252` (the page's upload read it so before: its params say)."""
    labels_from_folders = bool(params.get("labels_from_folders"))
    sources = params.get("sources", [])
    notes: list[dict] = []
    # Browser uploads send "folder/class/file.jpg" names for dropped folders: the folders can be the classes, and the
    # folder the page says was dropped, wrapping them all, is not one (API names keep every folder: folder_classes).
    uploaded = [PurePosixPath(s.get("name") or "").parts for s in sources if s["type"] == "file"]
    strip = 0
    if labels_from_folders:
        loose, named = [parts for parts in uploaded if not is_junk(parts)], params.get("dropped_folder")
        strip = top_folder_left_out(loose, named=named, where=DROPPED, root_classes=root_classes, notes=notes)
    entries: list[Entry] = []
    for source in sources:
        path = Path(source["path"])
        display = source.get("name") or path.name
        if source["type"] == "file" and is_junk(PurePosixPath(display).parts):
            continue
        if not path.exists():
            errors.append({"name": display, "reason": "not found on the server"})
        elif source["type"] != "folder" and not path.is_file():  # a pipe given as a file or zip would block
            errors.append({"name": display, "reason": "not a regular file: refused"})
        elif source["type"] == "zip":
            entries += zip_entries(path, labels_from_folders=labels_from_folders, display=display, errors=errors,
                                   root_classes=root_classes, notes=notes)  # fmt: skip
        elif source["type"] == "folder":
            entries += folder_entries(path, labels_from_folders=labels_from_folders, errors=errors)
        else:
            label = folder_label(PurePosixPath(display).parts[strip:]) if labels_from_folders else None
            entries.append(Entry(name=display, read=read_file(path), label_path=label, size=file_size(path)))
    entries = export_entries(entries, labels_from_folders=labels_from_folders, errors=csv_errors)
    csv_labels: dict[str, list[str]] = {}
    if params.get("csv"):
        try:
            csv_labels = label_csv_parse(Path(params["csv"]).read_bytes(), errors=csv_errors, read_as_1252=read_as_1252)
            if read_as_1252 is not None:
                read_as_1252 += [w for w in params.get("csv_read_as_1252", []) if w not in read_as_1252]
        except OSError as exc:
            csv_errors.append({"name": "labels CSV", "reason": f"could not be read ({exc})"})
    folders = FolderClasses()
    if labels_from_folders:  # an export's multi-label metadata (label_paths) is no folder's class
        folders = FolderClasses.of([(e.name, e.label_path) for e in entries if e.label_paths is None], notes)
    _names_shown_in_order(entries, errors, csv_errors, csv_labels)
    return entries, csv_labels, folders


def _names_shown_in_order(
    entries: list[Entry], errors: list[dict], csv_errors: list[dict], csv_labels: dict[str, list[str]]
) -> None:
    """File names lose their direction controls and are put in Unicode normal form C
    (labeling.constants.file_name_cleaned), once every name has been matched as given (folders, an export's
    metadata). A file "cat\u202egnp.exe", which showed as "catexe.png", is imported (its content decides its format)
    as "catgnp.exe", and a labels CSV row naming it either way labels it; so is a Mac's "cafe\u0301.jpg" by a row
    naming "café.jpg"."""
    for entry in entries:
        entry.name = file_name_cleaned(entry.name)
        entry.archive = entry.archive and file_name_cleaned(entry.archive)
    for error in (*errors, *csv_errors):
        error["name"] = file_name_cleaned(error["name"])
    for name in [name for name in csv_labels if file_name_cleaned(name) != name]:
        csv_labels.setdefault(file_name_cleaned(name), csv_labels.pop(name))

"""Folders as classes (an import with labels_from_folders): which folders of a file's path make its class, and the
job's report of which folder became which class.

Every folder above a file is a level of its class path: `animals/cat/1.jpg` is animals / cat, whether the path
comes from the API's `names`, a zip, a server folder or a folder dropped on the import page. A top folder that
nobody chose as a class, that only wraps the rest, is left out in two cases:
- the folder dropped on (or picked in) the import page: the browser starts every path with that folder's own name
  (`flowers/rose/1.jpg` for the folder flowers), and the page sends the name as `dropped_folder`;
- a zip's one top folder: `pets.zip` holding `pets/cat/1.jpg` is the folder pets zipped (Finder's Compress,
  Windows' "Send to compressed folder", `zip -r pets.zip pets`), and a downloaded data set's `archive.zip` holding
  `PetImages/Cat/1.jpg` is PetImages zipped; a taxonomy with one root class would put every image under it.
Both only when every image of that upload or zip lies in a sub-folder of it (an image directly in it would lose
its class), and never when the project has a root class of that name: in a project with the taxonomy
animals / alpha / one, `animals/beta/two/x.jpg` adds animals / beta / two, not a new root class beta. API `names`
are what the script says: every folder is kept.
A train/val/test folder at the top of what is left is a split, not a class (sources.folder_label).

The job's result keeps `folder_classes`: each folder with the class its files got and how many of its files were
imported, and, for each top folder this rule looked at, whether it was left out and why; the import page and
`manage.py import_images` show both under the job.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from labeling.selectors.classes import PATH_SEPARATOR, class_path_display, class_path_normalize, class_path_parse

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MAX_FOLDERS = 200  # folders named in the report; `count` covers them all
DROPPED = "the folder dropped or picked on the page"


def _images(paths: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The paths that look like images, when there are any: a README or licence beside the class folders does not
    decide whether a folder wraps them."""
    return [p for p in paths if PurePosixPath(p[-1]).suffix.lower() in IMAGE_SUFFIXES] or paths


def wrapping_folders(paths: list[tuple[str, ...]]) -> int:
    """1 when every image sits below one top folder that itself holds only folders of images, else 0 (the shape only:
    whether that folder is left out is top_folder_left_out's rule)."""
    images = _images(paths)
    if images and all(len(p) >= 3 for p in images) and len({p[0] for p in images}) == 1:
        return 1
    return 0


def top_folder_left_out(
    paths: list[tuple[str, ...]], *, named: str | None, where: str, root_classes: Collection[str], notes: list[dict]
) -> int:
    """How many leading folders of `paths` (one upload's or one zip's files) are no class: 1 for a top folder that
    wraps them all (the module docstring's rule), else 0. `where`: DROPPED (then only a top folder called `named`,
    the folder the page says was dropped) or the zip's name. The
    decision about a top folder a user could have meant either way goes to `notes` ({"folder", "where", "left_out",
    "why": a sentence for the job's report})."""
    images = _images(paths)
    if not images or any(len(p) < 2 for p in images) or len({p[0] for p in images}) != 1:
        return 0  # loose files, or several top folders: nothing wraps them all
    top = images[0][0]
    what = where if where == DROPPED else f"the top folder of {where}"

    def note(left_out: bool, why: str) -> int:
        notes.append({"folder": top, "where": where, "left_out": left_out, "why": f"{top}, {why}"})
        return int(left_out)

    if where == DROPPED and (not named or top.casefold() != named.casefold()):
        return 0
    if not wrapping_folders(paths):
        return note(False, f"{what}, is a class: images lie in it, not only in its sub-folders")
    if class_path_normalize(top) in root_classes:
        return note(False, f"{what}, is a class: the project has a class {top}")
    return note(True, f"{what}, is not a class: its sub-folders are")


def _row(name: str, label: str | None) -> tuple[str, str] | None:
    """The report's row of a file: (its folder, its class as pages show it); None when its folders give no class."""
    if not label:
        return None
    try:
        path = class_path_parse(label)
    except ValueError:
        return None
    return PurePosixPath(name).parent.as_posix(), class_path_display(path.split(PATH_SEPARATOR))


@dataclass
class FolderClasses:
    """job.result["folder_classes"] as the run fills it: {"folders": [{"folder", "class" (display path), "files":
    imported, "offered": files in the folder}] by folder, at most MAX_FOLDERS, "count": folders in all, "top_folders":
    `notes`}; {} when no folder gave a class and no top folder was decided on. `files` counts what was imported, as
    the classes made from the labels do (a corrupt or duplicate file is in `offered` only). A path that is no class is
    left out here: the run refuses it by file name."""

    notes: list[dict] = field(default_factory=list)
    offered: dict[tuple[str, str], int] = field(default_factory=dict)
    imported: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, labels: Iterable[tuple[str, str | None]], notes: list[dict]) -> FolderClasses:
        """From each file the job will read: (name, class path from its folders)."""
        report = cls(notes=notes)
        for name, label in labels:
            if (row := _row(name, label)) is not None:
                report.offered[row] = report.offered.get(row, 0) + 1
        return report

    def stored(self, name: str, label: str | None) -> None:
        """One file imported."""
        if (row := _row(name, label)) in self.offered:
            self.imported[row] = self.imported.get(row, 0) + 1

    def restore(self, previous: dict | None) -> None:
        """The files imported before a redelivered job resumes (its earlier result's rows)."""
        for r in (previous or {}).get("folders", []):
            if (r["folder"], r["class"]) in self.offered:
                self.imported[(r["folder"], r["class"])] = r["files"]

    def report(self) -> dict:
        if not self.offered and not self.notes:
            return {}
        rows = [
            {"folder": folder, "class": label, "files": self.imported.get((folder, label), 0), "offered": n}
            for (folder, label), n in sorted(self.offered.items())
        ]
        return {"folders": rows[:MAX_FOLDERS], "count": len(rows), "top_folders": self.notes}

"""The classes an import made from its labels (a CSV's or the folders'), for its report: a class name typed wrong in a
labels CSV ("animals/mammals/dgo") is a new class, made and used, and a manager should see it named, with the class it
probably meant, rather than find it later in the class list."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from labeling.selectors.classes import PATH_SEPARATOR, class_path_display

# At most this many new classes are named in the job's result (the count covers them all).
MAX_NAMED = 200
# A new class is named with a sibling that was there before the import when their names, case ignored, are one
# edit apart (a letter added, dropped, changed, or two swapped: "dgo" and "dog", "sevn" and "seven", "Dog" and "dog"),
# or two apart in names of 9 letters or more; "eleven" and "seven" (two edits) are not.
LONG_NAME = 9


@dataclass
class NewClasses:
    known: set[str]  # stored paths of the classes there before the import
    files: dict[str, int] = field(default_factory=dict)  # stored path of a class the import made -> files labeled
    near: dict[str, str] = field(default_factory=dict)  # the same path -> the class it is close to, or ""

    def made(self, paths: list[str]) -> None:
        """These paths (a file's label) were missing and are now classes: each is compared with the classes there
        before once, here (the report is written at every progress update)."""
        for path in paths:
            if path not in self.known and path not in self.files:
                self.files[path] = 0
                self.near[path] = self._near(path)

    def used(self, paths: list[str]) -> None:
        """A file was labeled with these paths."""
        for path in paths:
            if path in self.files:
                self.files[path] += 1

    def restore(self, rows: list[dict] | None) -> None:
        """The classes a resumed import's first attempt made (its result's rows)."""
        for row in rows or []:
            self.files[row["path"]] = int(row["files"])
            self.near[row["path"]] = row.get("near", "")

    def report(self) -> list[dict]:
        """[{"path": stored path, "name": display path, "files": n, "near": display path of the class it is close to,
        or ""}]: the classes labels named (a parent made on the way to one is not listed), those close to a class
        that was there first, then by path."""
        rows = [{"path": p, "name": _display(p), "files": n, "near": self.near[p]} for p, n in self.files.items()]
        return sorted(rows, key=lambda row: (not row["near"], row["path"]))[:MAX_NAMED]

    def _near(self, path: str) -> str:
        parent, _, leaf = path.rpartition(PATH_SEPARATOR)
        leaf = leaf.lower()
        allowed = 2 if len(leaf) >= LONG_NAME else 1
        close = [
            (edits, k)
            for name, k in self._siblings.get(parent, ())
            if (edits := _edits(leaf, name, allowed)) <= allowed
        ]
        return _display(min(close)[1]) if close else ""

    @cached_property
    def _siblings(self) -> dict[str, list[tuple[str, str]]]:
        """The classes there before, by parent path: (name in lower case, stored path)."""
        out: dict[str, list[tuple[str, str]]] = {}
        for k in self.known:
            parent, _, name = k.rpartition(PATH_SEPARATOR)
            out.setdefault(parent, []).append((name.lower(), k))
        return out


def _edits(a: str, b: str, limit: int) -> int:
    """Letters to add, drop, change or swap (two side by side) to make `a` into `b` (optimal string alignment);
    anything over `limit` reads limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[-1], limit + 1)


def _display(path: str) -> str:
    """An imported class's display path (an imported path's names hold no separator: labeling.services.imports.
    selectors.classes.class_path_parse)."""
    return class_path_display(path.split(PATH_SEPARATOR))

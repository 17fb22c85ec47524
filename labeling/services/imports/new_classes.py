"""The classes an import made from its labels (a CSV's or the folders'), for its report: a class name typed wrong in a
labels CSV ("animals/mammals/dgo") is a new class, made and used, and a manager should see it named, with the class it
probably meant, rather than find it later in the class list."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from labeling.selectors.classes import PATH_SEPARATOR, class_path_display

# At most this many new classes are named in the job's result (the count covers them all).
MAX_NAMED = 200
# A new class whose name is this close to a sibling that was there before the import (difflib's ratio, ignoring
# case) is named with it: "dgo" and "dog" are 0.67, "Dog" and "dog" 1.0, "spaceship" and "car" 0.17.
NEAR_RATIO = 0.6


@dataclass
class NewClasses:
    known: set[str]  # stored paths of the classes there before the import
    files: dict[str, int] = field(default_factory=dict)  # stored path of a class the import made -> files labeled

    def made(self, paths: list[str]) -> None:
        """These paths (a file's label) were missing and are now classes."""
        for path in paths:
            if path not in self.known:
                self.files.setdefault(path, 0)

    def used(self, paths: list[str]) -> None:
        """A file was labeled with these paths."""
        for path in paths:
            if path in self.files:
                self.files[path] += 1

    def restore(self, rows: list[dict] | None) -> None:
        """The classes a resumed import's first attempt made (its result's rows)."""
        for row in rows or []:
            self.files[row["path"]] = int(row["files"])

    def report(self) -> list[dict]:
        """[{"path": stored path, "name": display path, "files": n, "near": display path of the class it is close to,
        or ""}]: the classes labels named (a parent made on the way to one is not listed), those close to a class
        that was there first, then by path."""
        rows = [{"path": p, "name": _display(p), "files": self.files[p], "near": self._near(p)} for p in self.files]
        return sorted(rows, key=lambda row: (not row["near"], row["path"]))[:MAX_NAMED]

    def _near(self, path: str) -> str:
        parent, _, leaf = path.rpartition(PATH_SEPARATOR)
        siblings = {
            k.rpartition(PATH_SEPARATOR)[2].lower(): k for k in self.known if k.rpartition(PATH_SEPARATOR)[0] == parent
        }
        found = difflib.get_close_matches(leaf.lower(), list(siblings), n=1, cutoff=NEAR_RATIO)
        return _display(siblings[found[0]]) if found else ""


def _display(path: str) -> str:
    """An imported class's display path (an imported path's names hold no separator: labeling.services.imports.
    sources.class_path_parse)."""
    return class_path_display(path.split(PATH_SEPARATOR))

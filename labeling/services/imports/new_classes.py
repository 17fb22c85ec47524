"""The classes an import made from its labels (a CSV's or the folders'), for its report: a class name typed wrong in a
labels CSV ("animals/mammals/dgo") is a new class, made and used, and a manager should see it named, with the class it
probably meant, rather than find it later in the class list."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from labeling.selectors.classes import PATH_SEPARATOR, class_path_display

# At most this many new classes are named in the job's result (the count covers them all).
MAX_NAMED = 200
# A new class is named with a class that was there before the import when their names, case ignored, are one edit
# apart (a letter added, dropped, changed, or two swapped: "dgo" and "dog", "sevn" and "seven", "Dog" and "dog"), or
# two apart in names of 9 letters or more; "eleven" and "seven" (two edits) are not. A path with "/" is compared with
# the paths that differ from it in one level, case ignored in every level ("animals/mammals/dgo" and
# "animals/mammals/dog", "animals/mamals/cat" and "animals/mammals/cat", "Animals/Mammals/Dog" and
# "animals/mammals/dog"): its parents say where it goes. A bare name (a root class) says nothing of where it goes,
# so it is compared with every class's own name: "zebar" is close to animals / mammals / zebra, and a root class
# "cat" made beside animals / mammals / cat is named with it as "also" (the same name, never a typo of "hat"), unless a
# class there before has its very path but for capitals ("Cat" beside cat): that class is the one it is close to.
# The class is made all the same (a team may mean "Circle / Red" beside circle / red); the report names the other.
LONG_NAME = 9


@dataclass
class NewClasses:
    known: set[str]  # stored paths of the classes there before the import
    files: dict[str, int] = field(default_factory=dict)  # stored path of a class the import made -> files labeled
    near: dict[str, str] = field(default_factory=dict)  # the same path -> the class it is close to, or ""
    also: dict[str, list[str]] = field(default_factory=dict)  # a new root class -> classes elsewhere of its name

    def made(self, paths: list[str]) -> None:
        """These paths (a file's label) were missing and are now classes: each is compared with the classes there
        before once, here (the report is written at every progress update)."""
        for path in paths:
            if path not in self.known and path not in self.files:
                self.files[path] = 0
                self.also[path] = self._same_name(path)
                self.near[path] = self._same_path(path) or ("" if self.also[path] else self._near(path))

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
            self.also[row["path"]] = list(row.get("also", []))

    def report(self) -> list[dict]:
        """[{"path": stored path, "name": display path, "files": n, "near": display path of the class it is close to,
        or "", and for a root class whose name classes elsewhere carry, "also": their display paths}]: the classes
        labels named (a parent made on the way to one is not listed), those close to or named as a class that was
        there first, then by path."""
        rows = [
            {"path": p, "name": _display(p), "files": n, "near": self.near[p]}
            | ({"also": self.also[p]} if self.also.get(p) else {})
            for p, n in self.files.items()
        ]
        return sorted(rows, key=lambda row: (not (row["near"] or row.get("also")), row["path"]))[:MAX_NAMED]

    def _same_name(self, path: str) -> list[str]:
        """For a new root class, the classes there before with its very name, at other levels."""
        if PATH_SEPARATOR in path:
            return []
        return [_display(k) for k in sorted(self._by_name.get(path, ()))]

    def _same_path(self, path: str) -> str:
        """The class there before whose path is this one but for capitals, or ""."""
        same = self._lower_paths.get(path.lower())
        return _display(min(same)) if same else ""

    def _near(self, path: str) -> str:
        levels = path.lower().split(PATH_SEPARATOR)
        close: list[tuple[int, int, str]] = []  # (edits, depth, stored path) of each class close to it
        if len(levels) == 1:
            name = levels[0]
            allowed = 2 if len(name) >= LONG_NAME else 1
            for other, known in self._lower_names.items():
                if (edits := _edits(name, other, allowed)) <= allowed:
                    close += [(edits, k.count(PATH_SEPARATOR), k) for k in known]
        for i, level in enumerate(levels):  # the classes whose path differs from it in this level alone
            if len(levels) == 1:
                break
            allowed = 2 if len(level) >= LONG_NAME else 1
            for other, k in self._one_level.get((len(levels), i, *levels[:i], *levels[i + 1 :]), ()):
                if (edits := _edits(level, other, allowed)) <= allowed:
                    close.append((edits, 0, k))
        return _display(min(close)[2]) if close else ""

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        """The classes there before by their own name, at any level below the root."""
        out: dict[str, list[str]] = {}
        for k in self.known:
            if PATH_SEPARATOR in k:
                out.setdefault(k.rpartition(PATH_SEPARATOR)[2], []).append(k)
        return out

    @cached_property
    def _lower_names(self) -> dict[str, list[str]]:
        """The classes there before by their own name in lower case, root classes too."""
        out: dict[str, list[str]] = {}
        for k in self.known:
            out.setdefault(k.rpartition(PATH_SEPARATOR)[2].lower(), []).append(k)
        return out

    @cached_property
    def _lower_paths(self) -> dict[str, list[str]]:
        """The classes there before by their stored path in lower case."""
        out: dict[str, list[str]] = {}
        for k in self.known:
            out.setdefault(k.lower(), []).append(k)
        return out

    @cached_property
    def _one_level(self) -> dict[tuple, list[tuple[str, str]]]:
        """The classes there before under (depth, level left out, the other levels), all in lower case: (that level,
        stored path), so a path finds those that differ from it in one level without comparing every class."""
        out: dict[tuple, list[tuple[str, str]]] = {}
        for k in self.known:
            levels = k.lower().split(PATH_SEPARATOR)
            for i, level in enumerate(levels):
                out.setdefault((len(levels), i, *levels[:i], *levels[i + 1 :]), []).append((level, k))
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

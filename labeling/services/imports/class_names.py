"""How a label written as text in a labels CSV (the import page, `manage.py import_images --csv`, the API's `csv`)
names a class of a hierarchical project, whose CSVs often give a leaf by its bare name ("cat" for animals / mammals /
cat).

- A path with "/" ("animals/mammals/cat") is that path, made if missing, as before.
- A bare name (no "/") is the root class of that name when there is one (a flat project: always as before); else the
  one class there before the import that has that name, at any level ("cat" labels animals / mammals / cat); else it
  is a new root class.
- A bare name that several classes there before carry (animals / cat and toys / cat) is not guessed: the row's label
  is refused, naming them, and its file is imported unlabeled. Making a root class "cat" beside them would put the
  images under a class nobody meant, which trains silently; a refused row is counted on the job, and the same CSV with
  the full path, imported again, labels the images already there.
Active classes are looked at first; an archived class counts only when no active class has the name (an import that
names the full path of an archived class uses it too). Folder labels are paths, every folder a level: they are never
looked up by name (labeling.services.imports.folder_classes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from labeling.models import LabelClass
from labeling.selectors.classes import PATH_SEPARATOR, class_path_display


@dataclass
class ClassNames:
    """The classes there before the import by their own name: name -> stored paths (active ones, else archived)."""

    by_name: dict[str, list[str]]

    @classmethod
    def of(cls, classes: Mapping[str, LabelClass], known: Collection[str]) -> ClassNames:
        """`classes`: stored path -> class, every class of the project; `known`: the paths there before the import."""
        active: dict[str, list[str]] = {}
        archived: dict[str, list[str]] = {}
        for path, c in classes.items():
            if path in known and PATH_SEPARATOR in path:  # a root class is found by its path
                (archived if c.archived else active).setdefault(c.name, []).append(path)
        by_name = {name: sorted(paths) for name, paths in archived.items()}
        by_name.update({name: sorted(paths) for name, paths in active.items()})
        return cls(by_name=by_name)

    def resolve(self, paths: list[str], *, existing: Collection[str]) -> tuple[list[str], str | None]:
        """A CSV row's stored paths with each bare name made the path it names (the module docstring's rule), and
        None; or [] and why the row's label is refused (a name several classes carry). `existing`: the stored paths of
        the project's classes now (a root class of the name wins)."""
        out = []
        for path in paths:
            found = self.by_name.get(path, []) if PATH_SEPARATOR not in path and path not in existing else []
            if len(found) > 1:
                where = "; ".join(class_path_display(p.split(PATH_SEPARATOR)) for p in found)
                return [], (
                    f"label '{path}' not applied: {len(found)} classes are named {path} ({where}); "
                    "give the full path in the CSV"
                )
            out.append(found[0] if found else path)
        return out, None

"""Labels from an earlier import that a labels CSV replaced: counted in job.result ("relabeled") and listed by file
with the class before and after ("relabeled_files"), so a stale CSV cannot rewrite folder labels without a trace.

A label given in Labelloop is never replaced by an import (labeling.services.imports.batches refuses the row); a
label that came from an import is, since a team's corrected CSV is how it fixes its import labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labeling.selectors.classes import PATH_SEPARATOR, class_path_display

MAX_LISTED = 500  # files named; the count covers every one


def _display(paths: list[str]) -> str:
    return ", ".join(class_path_display(p.split(PATH_SEPARATOR)) for p in paths) or "no class"


@dataclass
class Relabeled:
    count: int = 0
    rows: list[dict] = field(default_factory=list)

    def replaced(self, name: str, before: list[str], after: list[str]) -> None:
        """`name`'s import label `before` (stored paths) became `after`; the same classes are no replacement."""
        if not before or sorted(before) == sorted(after):
            return
        self.count += 1
        if len(self.rows) < MAX_LISTED:
            self.rows.append({"name": name, "before": _display(sorted(before)), "after": _display(sorted(after))})

    def restore(self, result: dict) -> None:
        """What a resumed import's first attempt replaced (its result)."""
        self.count = int(result.get("relabeled") or 0)
        self.rows = list(result.get("relabeled_files") or [])

    def report(self) -> dict:
        """job.result's part: nothing when no label was replaced."""
        return {"relabeled": self.count, "relabeled_files": self.rows} if self.count else {}

    def words(self) -> str:
        """ "1 label replaced" for the job's message; "" when none was."""
        return f"{self.count} label{'s' if self.count != 1 else ''} replaced" if self.count else ""

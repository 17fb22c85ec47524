"""Class paths, in one place: a class's path is the names from its taxonomy root down to it.

Stored form "animal/mammal/cat": exports, manifests, label CSVs and folder imports, the dataset hash.
Display form "animal / mammal / cat": pages, charts and the class names a trained model carries.
Both are joined from the same names, never rewritten from each other. A new class's name holds no "/"
(class_name_problem: "a/b" would read as b under a), but a class made before that rule may, and its "a/b" must keep
showing (and exporting) as "a/b".

This module imports none of labeling's own modules but its constants (which import none), so labeling.models can
use it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from django.db.models import Model

from labeling.constants import DIRECTION_CONTROLS, INVISIBLE_BLANKS, MAX_CLASS_DEPTH, MAX_CLASS_NAME, ZERO_WIDTH

PATH_SEPARATOR = "/"
DISPLAY_SEPARATOR = " / "

# class_name_problem's answer for a name holding PATH_SEPARATOR (a caller may add what to do instead).
NAME_SEPARATOR_PROBLEM = (
    "a class name cannot contain '/' (“{name}”): it separates the levels of a path, so “a/b” means b under a"
)

# Whitespace, zero-width characters (labeling.constants.ZERO_WIDTH says why) and the direction marks (LRM, RLM, ALM:
# they order a word's neighbours, and at a name's end they have none) at either end of a name
_NAME_EDGES = re.compile(f"^[\\s{ZERO_WIDTH}\u200e\u200f\u061c]+|[\\s{ZERO_WIDTH}\u200e\u200f\u061c]+$")
# Dropped from a name wherever they are: they show nothing and shape nothing (U+200B zero-width space, U+2060 word
# joiner, U+FEFF byte order mark, U+00AD soft hyphen: a hyphen only where a line breaks, which a class name never does).
_DROPPED = re.compile("[\u200b\u2060\ufeff\u00ad]")
# Not seen when a name is read: Unicode's format characters (zero-width space, joiners, direction marks, soft hyphen;
# category Cf, in the Basic Multilingual Plane) but the tags, which tell one subdivision flag from another, the
# combining grapheme joiner and the variation selectors. Two sibling names equal without them are twins
# (class_name_twin): "Ca\u034ffé" is "Café". Written out, not derived at import (a scan of the 65,536 characters cost
# every process 13 ms at start); tests/labeling/test_h57_class_names_unicode.py checks it against Python's tables.
_UNSEEN = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb]"
)

ClassTree = Mapping[int, tuple[str, int | None]]  # class id -> (name, parent id)


class _ClassRow(Protocol):
    pk: int
    name: str
    parent_id: int | None


C = TypeVar("C", bound=_ClassRow)


def class_path_names(class_id: int, tree: ClassTree) -> list[str]:
    """The names from the root down to the class. A parent missing from `tree`, or a cycle (the database never
    holds one, but a walk must not hang on it), ends the walk."""
    names: list[str] = []
    node: int | None = class_id
    seen: set[int] = set()
    while node is not None and node in tree and node not in seen:
        seen.add(node)
        name, node = tree[node]
        names.append(name)
    return names[::-1]


def class_ancestors(class_id: int, tree: ClassTree) -> list[int]:
    """The classes above the class, its parent first (none for a top-level class). A parent missing from `tree`, or a
    cycle, ends the walk, as in class_path_names."""
    found: list[int] = []
    node = tree[class_id][1] if class_id in tree else None
    while node is not None and node in tree and node not in found and node != class_id:
        found.append(node)
        node = tree[node][1]
    return found


def class_name_clean(name: str) -> str:
    """A class name as it is stored and compared: trimmed of spaces and zero-width characters at both ends, without
    the characters that show nothing and change nothing anywhere in it (_DROPPED: a zero-width space, a word joiner,
    a byte order mark, a soft hyphen), in Unicode normal form C. "Café" typed as "e" + a combining acute (macOS file
    names, some keyboards) and as one "é" reads the same everywhere, so it is one name: two classes of it would be two
    folders no one can tell apart. "Cros\u200bs" is stored as "Cross", the name a labels CSV or a person types."""
    if name.isascii():  # most names: nothing to normalise, and Python's whitespace is the pattern's
        return name.strip()
    return unicodedata.normalize("NFC", _NAME_EDGES.sub("", _DROPPED.sub("", name)))


def class_name_read(name: str, *, ignore_case: bool = True) -> str:
    """`name` as a reader tells it from another: cleaned (class_name_clean), without the characters that show nothing
    inside it (_UNSEEN), and with `ignore_case` in either case (the class search ignores case, and "Circle" and
    "circle" would be one folder on Windows and macOS)."""
    read = _UNSEEN.sub("", class_name_clean(name))
    return read.casefold() if ignore_case else read


def class_name_twin(name: str, names: Iterable[str], *, ignore_case: bool = True) -> str | None:
    """The one of `names` (a class's siblings) that reads as `name` does (class_name_read), or None: a class stored
    before names were cleaned ("Cafe\u0301") is the twin of a new "Café", and so are a "Café\u200f" and, with
    `ignore_case` (a class a person names on a page, the API or the admin), "CAFÉ". Inside a name the characters that
    shape its text (a Persian non-joiner, an emoji's joiner, a direction mark) are kept; a sibling that reads the same
    is refused. An import leaves case alone: a team's taxonomy may have "a" and "A" (an export of it tells their
    folders apart), and the import names the class such a path is close to."""
    wanted = class_name_read(name, ignore_case=ignore_case)
    return next((other for other in names if class_name_read(other, ignore_case=ignore_case) == wanted), None)


def class_twin_note(name: str, twin: str) -> str:
    """How `name` differs from its `twin` (class_name_twin), for a refusal: "" where they are the same name."""
    if name == twin:
        return ""
    if _UNSEEN.sub("", class_name_clean(name)) == _UNSEEN.sub("", class_name_clean(twin)):
        return " (in other Unicode characters that read the same)"
    return " (the names differ only in upper and lower case)"


def _invisible(ch: str) -> bool:
    return ch.isspace() or ch in INVISIBLE_BLANKS or unicodedata.category(ch) == "Cf"


def class_name_problem(name: str, max_length: int = 200) -> str | None:
    """Why `name` cannot be one class's name (one level of a path), or None: the one rule of the class forms, the
    project's class list and imports, for a new class and a rename. No "/": it separates a path's levels, so a root
    class "a/b" would be read back as b under a by every export and import. Nothing but spaces and invisible
    characters (a zero-width space): no one could see or pick the class. `name` as typed or cleaned (class_name_clean;
    the class is stored cleaned, and its length is the cleaned one's). `max_length` is LabelClass.name's
    (labeling.constants.MAX_CLASS_NAME)."""
    if not name.strip():
        return "empty class name"
    if len(class_name_clean(name)) > max_length:
        return f"class name {name[:40]!r}… is over {max_length} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"class name {name!r} contains a control character"
    if DIRECTION_CONTROLS.intersection(name):
        return f"class name {name!r} contains a right-to-left override or other direction-control character"
    if all(map(_invisible, name)):
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in dict.fromkeys(name) if not ch.isspace())
        return (
            f"class name {name!r} shows nothing: it holds only spaces and invisible characters ({codes}); give the "
            "class a name people can read"
        )
    if PATH_SEPARATOR in name:
        return NAME_SEPARATOR_PROBLEM.format(name=name)
    return None


def class_path(names: Iterable[str]) -> str:
    """The stored path of a class whose names, root first, are `names`."""
    return PATH_SEPARATOR.join(names)


def class_path_parse(text: str) -> str:
    """An imported class path in its one spelling: "a/b", "a / b" and "/a/b/" are all "a/b" (animals, then cat).

    Raises ValueError with the reason for an empty level ("a//b", "a/ /b"), a name over 200 characters
    or a control character: such a label is refused, never half created.
    """
    for typed in text.split(PATH_SEPARATOR):  # a level of invisible characters is named as such, not as "empty"
        if typed.strip() and all(map(_invisible, typed)):
            raise ValueError(class_name_problem(typed.strip()))
    levels = class_path_normalize(text).split(PATH_SEPARATOR)
    if not any(levels):
        raise ValueError("empty class name")
    if len(levels) > MAX_CLASS_DEPTH:
        raise ValueError(f"{len(levels)} levels of classes; at most {MAX_CLASS_DEPTH}")
    for level in levels:
        if not level:
            raise ValueError(f"empty class name between slashes in {text.strip()!r}")
        problem = class_name_problem(level, MAX_CLASS_NAME)
        if problem:
            raise ValueError(problem)
    return class_path(levels)


def class_paths_checked(entries: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """A class list's stored paths, each entry `(where, text)` checked by class_path_parse: `where` names the entry
    as its author finds it ("Line 3" on the new-project page, "Class 3 ('a//b')" for a script). Returns (paths,
    problems): the paths in order, a repeat (another spelling of one path too) kept once; every bad entry named,
    "<where>: <reason>.", so a list is refused whole, with all there is to fix."""
    paths, problems = [], []
    for where, text in entries:
        try:
            paths.append(class_path_parse(text))
        except ValueError as exc:
            problems.append(f"{where}: {exc}.")
    return list(dict.fromkeys(paths)), problems


def class_path_display(names: Iterable[str]) -> str:
    """The path as pages show it, from the same names as the stored path."""
    return DISPLAY_SEPARATOR.join(names)


def class_path_normalize(text: str) -> str:
    """A path someone typed ("animal / cat", "animal/cat", "/animal/cat/") in the stored form, each level cleaned
    (class_name_clean: trimmed, in normal form C), unchecked (class_path_parse checks it too)."""
    levels = text.strip().strip(PATH_SEPARATOR).split(PATH_SEPARATOR)
    return PATH_SEPARATOR.join(class_name_clean(level) for level in levels)


def class_tree(*, project: Model) -> dict[int, tuple[str, int | None]]:
    """Every class of the project (archived ones too) as id -> (name, parent id), in one query."""
    rows = project.classes.values_list("pk", "name", "parent_id")
    return {pk: (name, parent) for pk, name, parent in rows}


def class_paths(tree: ClassTree, *, display: bool = False) -> dict[int, str]:
    """class id -> stored path (or display path) for every class of `tree` (see class_tree)."""
    join = class_path_display if display else class_path
    return {pk: join(class_path_names(pk, tree)) for pk in tree}


def paths_attached(classes: Iterable[Model], *, project: Model, tree: ClassTree | None = None) -> list:
    """`classes` (LabelClass rows) with their display paths worked out from one read of the project's tree, so
    that `LabelClass.path` costs no query. Unattached, it walks the parents, a query per level not yet loaded:
    a 5,000-class, 8-level taxonomy made the settings page 9,000 queries and 37 s. `tree`: the project's whole
    tree (class_tree) when the caller has it already, which saves the read."""
    classes = list(classes)
    paths = class_paths(class_tree(project=project) if tree is None else tree, display=True)
    for c in classes:
        c.__dict__["attached_path"] = paths.get(c.pk)
    return classes


def classes_by_path(classes: Iterable[C]) -> dict[str, C]:
    """stored path -> class, for matching imported label paths against a taxonomy. `classes` must hold every
    class of the project (a path needs all its ancestors). A path is keyed as class_path_parse spells it, its names
    cleaned (class_name_clean), so a class stored before names were ("Cafe\u0301") is found by an import's "Café";
    where two such classes read the same, the key is the one stored in that very spelling."""
    classes = list(classes)
    tree = {c.pk: (c.name, c.parent_id) for c in classes}
    found: dict[str, C] = {}
    for c in classes:
        names = class_path_names(c.pk, tree)
        stored, key = class_path(names), class_path(map(class_name_clean, names))
        if key not in found or key == stored:
            found[key] = c
    return found


def unusable_classes_message(*, project: Model, missing: Iterable[int]) -> str:
    """Why a label or correction naming `missing` class ids (none an active class of the project) is refused: an
    archived class by its path, as the annotator knows it (its id means nothing to them), else the id."""
    tree = class_tree(project=project)
    missing = list(missing)
    archived = [class_path_display(class_path_names(i, tree)) for i in missing if i in tree]
    unknown = [i for i in missing if i not in tree]
    parts = []
    if archived:
        names = ", ".join(f"“{name}”" for name in archived)
        were = "was" if len(archived) == 1 else "were"
        parts.append(f"Not saved: {names} {were} archived by a manager; the classes shown now are the ones to use.")
    if unknown:
        parts.append(f"Unknown class id(s) for this project: {unknown}.")
    return " ".join(parts)


def classes_below(children: Mapping[int | None, Iterable[int]], ids: Iterable[int]) -> set[int]:
    """Every class under `ids` (children, their children, ...) in `children` (parent id -> child ids): the one walk
    down a taxonomy, for an export's class filter and the settings page's keys. `ids` themselves only where one sits
    under another."""
    found: set[int] = set()
    todo = list(ids)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found

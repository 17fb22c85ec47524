"""File and folder names in a dataset export: safe on every OS, unique within the export, and stable across round trips.

An image is exported under its own (sanitized) original name. Only names that two or more images of the same export
would share (case ignored: Windows and macOS file systems, and their unzip tools, do not tell "Cat.png" from
"cat.png") get a disambiguator, taken from the image's content: `cat.png` becomes `cat_1a2b3c4d.png` (the first 8
hex digits of its sha256). Nothing in a name depends on the item id, the project or the export, so importing an
export into a fresh project and exporting that gives the same relative file names, round after round (the
disambiguated name is unique by itself, so it gets nothing more). An id prefix (`12_cat.png`) stacked one more
prefix per round, as the new project's ids differ (`40_12_cat.png`).

Class folders follow the same rule (`export_folder_names`): a class's path, flattened ("animal/cat" is
"animal__cat") and sanitized; folders that two classes would share, case ignored ("a" and "A"), each get a tag of
the sha256 of the class's exact stored path, never its id, so the same classes give the same folders in any project.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from labeling.selectors.classes import PATH_SEPARATOR

# Windows refuses these as a file or folder name, with or without an extension ("con", "aux.jpg").
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200  # file systems allow 255 bytes per name; a CJK character takes 3
_MAX_FOLDER_CHARS = 100  # sanitize_name's default: a tag is never cut off
_TAG_LENGTHS = (8, 16, 64)  # hex digits of the sha256: longer only if a shorter tag still collides


def sanitize_name(name: str, *, fallback: str, max_length: int = 100) -> str:
    """A file/folder name that is safe on every OS and inside a zip (no separators, no leading dots).

    Letters, marks and digits of every script are kept (NFC), so "plane café" is "plane_café" and "猫" stays
    "猫"; any run of other characters (spaces, punctuation, separators, controls) becomes one "_". At most
    `max_length` characters and 200 bytes of UTF-8; Windows device names ("con") get a trailing "_".
    """
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", name):
        keep = ch in "._-" or unicodedata.category(ch)[0] in "LMN"
        if keep or not out or out[-1] != "_":
            out.append(ch if keep else "_")
    cleaned = "".join(out).strip("._-")[:max_length]
    while len(cleaned.encode()) > _MAX_NAME_BYTES:
        cleaned = cleaned[:-1]
    cleaned = cleaned.strip("._-")
    if cleaned.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        cleaned += "_"
    return cleaned or fallback


def export_file_name(*, original_name: str, storage_name: str, tag: str = "") -> str:
    """The export name of one image: its original file name (folders dropped), sanitized, with the extension of
    the stored file (a ".png" named "x.jpg" is exported as "x.png"; .jpg and .jpeg count as one). `tag`, when
    given, goes between the stem and the extension (`cat_1a2b3c4d.png`): see `export_file_names`."""
    base = original_name.replace("\\", "/").rsplit("/", 1)[-1]
    stored_base = storage_name.rsplit("/", 1)[-1]
    stored_ext = stored_base.rpartition(".")[2].lower() if "." in stored_base else ""
    stored_ext = f".{stored_ext}" if stored_ext else ""
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = f".{ext.lower()}" if ext else ""
    same_jpeg = {ext, stored_ext} <= {".jpg", ".jpeg"}
    if stored_ext and ext != stored_ext and not same_jpeg:
        ext = stored_ext
    stem = sanitize_name(stem, fallback="image", max_length=120)
    if tag:
        while len(f"{stem}_{tag}{ext}".encode()) > _MAX_NAME_BYTES + 50:  # 250 bytes: under every file system's 255
            stem = stem[:-1]
        stem = f"{stem.rstrip('._-') or 'image'}_{tag}"
    return f"{stem}{ext}"


def _with_tags(plain: list[str], tags: list[str], tagged: Callable[[int, str], str]) -> list[str]:
    """`plain` names made unique, case ignored: a name only one entry has is kept; every entry sharing a name gets
    `tagged(index, tag)` with its tag's first 8 hex digits (16, then all of them, where that is still taken), in
    the order of the tags, so the result never depends on the order given."""
    sharing: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(plain):
        sharing[name.casefold()].append(index)
    names = list(plain)
    taken = {key for key, indices in sharing.items() if len(indices) == 1}
    clashes = sorted((tags[i], i) for indices in sharing.values() if len(indices) > 1 for i in indices)
    for tag, index in clashes:
        for length in _TAG_LENGTHS:
            name = tagged(index, tag[:length])
            if name.casefold() not in taken:
                break
        names[index] = name
        taken.add(name.casefold())
    return names


def export_folder_names(paths: Sequence[str]) -> list[str]:
    """The folder of each class (in the order given) from its stored path ("animal/cat"), unique case ignored.

    The path's levels are joined by "__" and sanitized ("animal__cat"); a class whose name has nothing a file
    system keeps is "class". Classes sharing a folder, case ignored ("a" and "A"; "b c" and "b_c"), all get a tag
    of the sha256 of their exact stored path (`a_ca978112`): the folders depend on the paths only, so a dataset
    export imported into a fresh project (whose manifest gives back the same paths) exports the same folders.
    """
    plain = [sanitize_name(path.replace(PATH_SEPARATOR, "__"), fallback="class") for path in paths]
    tags = [hashlib.sha256(path.encode()).hexdigest() for path in paths]

    def tagged(index: int, tag: str) -> str:
        stem = plain[index][: _MAX_FOLDER_CHARS - len(tag) - 1].rstrip("._-") or "class"
        return f"{stem}_{tag}"

    return _with_tags(plain, tags, tagged)


class NamedImage(Protocol):
    sha256: str
    original_name: str
    storage_name: str


def export_file_names(images: Iterable[NamedImage]) -> list[str]:
    """The export name of each image (in the order given), unique within the export, case ignored.

    A name only one image has is kept as `export_file_name` makes it. Images sharing a name all get a tag of
    their sha256 (8 hex digits; 16, then 64, where that tag is still taken): none of them keeps the plain name,
    so which one it would be never depends on the order or the ids. The result depends on the images' names and
    contents only (the sha256 is unique within a project).
    """
    images = list(images)
    plain = [export_file_name(original_name=i.original_name, storage_name=i.storage_name) for i in images]
    return _with_tags(
        plain,
        [i.sha256 for i in images],
        lambda index, tag: export_file_name(
            original_name=images[index].original_name, storage_name=images[index].storage_name, tag=tag
        ),
    )

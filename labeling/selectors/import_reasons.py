"""Kinds of import problems: the import page counts every file by kind and lists the first names of each, A to Z,
each beside its kind.

Reasons are written where a file is refused (validation, sources, archives, run) and stay specific
("file is 61.2 MiB, over the 50.0 MiB limit"); the kind groups them ("over the size limit").
"""

from __future__ import annotations

# Kinds of problems for the counts the import page shows, checked in order: (phrases in the reason, kind).
_REASON_KINDS: list[tuple[tuple[str, ...], str]] = [
    (("images have this name:",), "ambiguous file name"),  # first: the reason quotes the file's name
    (("row's file is a duplicate",), "label for a duplicate file"),
    (("this copy's class",), "label conflict on a duplicate"),
    (("duplicate of",), "duplicate"),
    (("empty file",), "empty file"),
    (("zip bomb", "zip has", "zip would unpack", "not a valid zip"), "zip refused as a whole"),
    (("zip slip",), "unsafe path in zip"),
    (("zip inside the zip",), "zip inside a zip"),
    (("encrypted zip",), "encrypted zip entry"),
    (("too many pixels", "pixel limit"), "too many pixels"),
    (("size limit", "over the"), "over the size limit"),
    (("not an image", "not accepted", "not a supported image"), "not a supported image"),
    (("truncated or corrupt", "could not be decoded", "image has no pixels"), "truncated or corrupt"),
    (("not a regular file", "symbolic link"), "not a regular file"),
    (("labels csv", "expected filename,label", "label not applied", "label '"), "label refused"),
    (("labels for a single-label",), "too many labels for a single-label project"),
    (("could not create class",), "class could not be created"),
    (("matches several items",), "ambiguous file name"),  # nothing applied, but not for want of an item
    (("no item with this name",), "label for no item"),
    (("already labeled",), "already labeled"),
    (("could not be read", "not a readable zip", "not found", "could not be stored"), "unreadable"),
]


def reason_kind(reason: str) -> str:
    """The kind of a rejection reason, so counts can cover every file while names are kept for the first few."""
    lower = reason.lower()
    for phrases, kind in _REASON_KINDS:
        if any(phrase in lower for phrase in phrases):
            return kind
    return reason.split("(")[0].split(":")[0].strip()[:80] or "other"

"""Class keys of the labeling page: every level of a taxonomy has its own keys, 1-9 then letters.

A key picks a class among the classes shown now (one level at a time), so a 22-class top level and
each sibling group below it start again at 1. Computed at display time: the stored LabelClass.hotkey
is unique in the whole project (the review page lists every class at once), a level's key need not be.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import replace

from labeling.selectors.queue import ClassOption

# Keys the labeling page keeps for itself: skip, undo, help, search, instructions, image background, heatmap.
PAGE_KEYS = frozenset("sz?/ibh")
# The order in which classes get keys: digits first (one hand on the number row), then letters.
CLASS_KEYS = "123456789" + "".join(c for c in string.ascii_lowercase if c not in PAGE_KEYS)


def _usable(key: str) -> bool:
    return len(key) == 1 and not key.isspace() and key not in PAGE_KEYS


def level_hotkeys(classes: Sequence[ClassOption]) -> dict[int, str]:
    """Class id -> the key that picks it among its siblings ("" once a level has run out of keys).

    A flat project keeps its stored hotkeys (a manager's choice), except a key the page uses itself;
    classes without one get the first free keys. In a taxonomy every level is numbered in taxonomy
    order: its stored hotkeys were handed out over the whole tree in the order the classes were
    created (depth first, from an import's folders), which left most of a large tree without keys.
    """
    siblings: dict[int | None, list[ClassOption]] = {}
    for option in classes:
        siblings.setdefault(option.parent_id, []).append(option)
    flat = list(siblings) == [None]
    keys: dict[int, str] = {}
    for group in siblings.values():
        taken: set[str] = set()
        for option in group if flat else ():
            key = option.hotkey.lower()
            if _usable(key) and key not in taken:
                keys[option.id] = key
                taken.add(key)
        free = (k for k in CLASS_KEYS if k not in taken)
        for option in group:
            if option.id not in keys:
                keys[option.id] = next(free, "")
    return keys


def classes_with_level_keys(classes: Sequence[ClassOption]) -> list[ClassOption]:
    """The classes as given, each with `hotkey` replaced by its key on the labeling page."""
    keys = level_hotkeys(classes)
    return [replace(option, hotkey=keys[option.id]) for option in classes]


def key_sequences(classes: Sequence[ClassOption]) -> dict[int, list[str]]:
    """Class id -> the keys that reach it on the labeling and review pages, one per level from the root ("even / six"
    is ["1", "3"]: 1 opens "even", 3 picks "six" in it); a level that ran out of keys ends the list with ""."""
    keys = level_hotkeys(classes)
    parents = {option.id: option.parent_id for option in classes}
    sequences: dict[int, list[str]] = {}
    for option in classes:
        chain, node = [], option.id
        while node is not None and node in keys and len(chain) <= len(classes):
            chain.append(keys[node])
            node = parents[node]
        sequences[option.id] = chain[::-1]
    return sequences

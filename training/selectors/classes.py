"""A model's classes as machine-facing answers name them: stored paths ("a/b/c", as dataset exports, CSVs and the
class-list API's `stored_path` spell them), never the display paths ("a / b / c") trained checkpoints, their metrics
and label-error searches carry. Pages keep the display paths; everything a script reads goes through here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from labeling.selectors.classes import (
    DISPLAY_SEPARATOR,
    PATH_SEPARATOR,
    ClassTree,
    class_path,
    class_path_names,
    class_paths,
    class_tree,
)
from training.models import ModelVersion

# The parts of a metrics dict (training.ml.evaluate) that name classes: per_class's keys and these lists.
METRICS_NAME_LISTS = ("macro_classes", "no_support")


def version_class_names(version: ModelVersion) -> list[str]:
    """Stored class paths ("parent/child") in the version's output order."""
    tree = class_tree(project=version.project)
    return [class_path(class_path_names(class_id, tree)) or f"class {class_id}" for class_id in version.class_ids]


def model_class_paths(*, names: Sequence[str], class_ids: Sequence[int], tree: ClassTree) -> list[str]:
    """The stored paths ("a/b/c", as dataset exports, CSVs and the REST API spell them) of a model's outputs, in
    its output order: what every machine-facing answer about a model's classes says (its export's config.json and
    card, the prediction service, batch inference). `names`: the class names the checkpoint carries, display paths
    ("a / b / c") from training, stored paths from older checkpoints; `class_ids`: the version's, in the same order.

    An output whose class still has that path (either spelling) gets the class's stored path, joined from its
    names. Otherwise (the class renamed or deleted since, or no ids) its checkpoint name is read back level by level
    (" / " -> "/"); a flat name without " / " is unchanged, so a flat project's answers stay byte for byte. Where two
    outputs would get one stored path (a class named "a/b" from before the rule, beside b under a) both keep their
    checkpoint name: an answer never names two outputs alike."""
    ids = list(class_ids) if len(class_ids) == len(names) else [None] * len(names)
    stored, display = class_paths(tree), class_paths(tree, display=True)
    paths = []
    for name, class_id in zip(names, ids, strict=True):
        if class_id in stored and name in (display[class_id], stored[class_id]):
            paths.append(stored[class_id])
        else:
            paths.append(_read_back(name))
    counts = Counter(paths)
    return [path if counts[path] == 1 else name for path, name in zip(paths, names, strict=True)]


def class_names_stored(names: Iterable[str], *, tree: ClassTree, class_ids: Iterable[int] | None = None) -> dict:
    """name -> stored path, for class names an answer carries without their output order (a version's metrics as
    the database returns them, a label-error search's rows): model_class_paths' rule, matched by name. A name that
    is the display or stored path of one of `class_ids` (None: any class of `tree`) gets that class's stored path;
    any other is read back level by level, so a flat name is unchanged. Two names that would get one path both keep
    their own."""
    ids = tree.keys() if class_ids is None else [i for i in class_ids if i in tree]
    stored, display = class_paths(tree), class_paths(tree, display=True)
    known = {display[i]: stored[i] for i in ids} | {stored[i]: stored[i] for i in ids}
    wanted = list(dict.fromkeys(names))
    paths = {name: known.get(name, _read_back(name)) for name in wanted}
    counts = Counter(paths.values())
    return {name: path if counts[path] == 1 else name for name, path in paths.items()}


def metrics_class_names(metrics: dict | None) -> list[str]:
    """Every class name a metrics dict carries (per_class keys, macro_classes, no_support)."""
    metrics = metrics if isinstance(metrics, dict) else {}
    names = list(metrics["per_class"]) if isinstance(metrics.get("per_class"), dict) else []
    for key in METRICS_NAME_LISTS:
        if isinstance(metrics.get(key), list):
            names += [name for name in metrics[key] if isinstance(name, str)]
    return names


def metrics_spelled(metrics: dict | None, spelled: dict[str, str]) -> dict:
    """`metrics` with its class names (per_class keys, macro_classes, no_support) spelled as `spelled` maps them
    (checkpoint name -> stored path, model_class_paths): an export names a class one way throughout, so a script can
    join config.json's per-class figures to its class_names. A name not in `spelled` is kept."""
    out = dict(metrics or {})
    if isinstance(out.get("per_class"), dict):
        out["per_class"] = {spelled.get(name, name): row for name, row in out["per_class"].items()}
    for key in METRICS_NAME_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [spelled.get(name, name) if isinstance(name, str) else name for name in out[key]]
    return out


def version_class_paths(version: ModelVersion, names: Sequence[str] | None = None) -> list[str]:
    """model_class_paths of a version (its checkpoint's `names`; none: its classes' stored paths now)."""
    if not names:
        return version_class_names(version)
    return model_class_paths(names=names, class_ids=version.class_ids, tree=class_tree(project=version.project))


def _read_back(name: str) -> str:
    """A display path read back as a stored one, level by level (" / " -> "/"); a flat name is unchanged."""
    return PATH_SEPARATOR.join(name.split(DISPLAY_SEPARATOR))

"""The backbone weights a project may choose on this deployment, and the one rule for the model hub.

Weights "hub" are downloaded by the training worker at a run's start. The web process cannot tell whether a worker
has internet (it never imports torch, and the workers may be elsewhere), so the administrator says so with
LABELLOOP_MODEL_HUB (off by default: the product runs offline). Off, a project may not be set to "hub" (the
settings page, POST /api/projects/ and manage.py project_create all check through the settings form, which asks
`hub_weights_refusal`), and the choice is shown as unavailable rather than left out. A project already on "hub"
keeps it, so its manager can still save the rest of its settings; the training scheduler queues no run for it
meanwhile (`hub_weights_training_refusal`: each would start a worker only to fail), and its settings page says so.
Which backbone weights go with is held here too (`bundled_weights_refusal`, `registered_weights_refusal`), so the
settings form and the admin refuse the same pairs in the same words."""

from __future__ import annotations

from django.conf import settings

from labeling.constants import BUNDLED_BACKBONES, WEIGHTS_KEYWORDS, registered_weights_id, registered_weights_value
from labeling.selectors.training_seam import registered_backbone_weights

HUB = "hub"
# The way out every hub refusal and warning ends with, held once so the three say it alike.
_HUB_ADVICE = "or ask an administrator to set LABELLOOP_MODEL_HUB=on if the workers can reach the hub."
HUB_REFUSED = (
    "The model hub is off on this deployment (LABELLOOP_MODEL_HUB=off): the training workers cannot download weights "
    f"from it, so training would fail. Choose bundled or registered weights, {_HUB_ADVICE}"
)
HUB_KEPT_WARNING = (
    "This project's backbone weights come from the model hub, which is off on this deployment "
    "(LABELLOOP_MODEL_HUB=off): the training workers cannot download them, so no training run is queued for it (the "
    "scheduler holds it; Train now, the API and manage.py train refuse it). "
    f"Choose bundled or registered weights below, {_HUB_ADVICE}"
)
# Why the scheduler holds such a project; a run asked for by hand is refused with it, after what that means
HUB_TRAINING_HELD = (
    "this project's backbone weights come from the model hub, which is off on this deployment "
    "(LABELLOOP_MODEL_HUB=off), so the training workers cannot download them. Choose bundled or registered weights in "
    f"the project settings, {_HUB_ADVICE}"
)
HUB_TRAINING_REFUSED = f"No training run is queued: {HUB_TRAINING_HELD}"

# Backbone weights a manager may pick: the keywords the worker understands, the weights an ML engineer registered
# (manage.py weights_register or the admin: validated, sha256 recorded), then the checkpoints an administrator
# listed (LABELLOOP_BACKBONE_WEIGHTS, paths on the workers). A free path is not accepted: a manager could
# otherwise have the worker open any file, and learn from the run's error whether it exists.
_WEIGHTS_LABELS = {
    "bundled": "Bundled ImageNet weights (EfficientNet-Lite0 and Lite2; work offline)",
    HUB: "From the model hub (needs internet on the worker)",
    "none": "None (random start)",
}
WEIGHTS_CHOICES: tuple[tuple[str, str], ...] = tuple((value, _WEIGHTS_LABELS[value]) for value in WEIGHTS_KEYWORDS)


def model_hub_on() -> bool:
    """Whether the administrator says the training workers can download weights from the model hub."""
    return bool(settings.LABELLOOP_MODEL_HUB)


def hub_weights_refusal(value: str | None, *, current: str | None) -> str:
    """Why a project whose weights are now `current` (None: a new project) may not be set to `value`; "" where it
    may. Only "hub" while the hub is off is refused, and not for a project already on it (it keeps its value)."""
    if value != HUB or current == HUB or model_hub_on():
        return ""
    return HUB_REFUSED


def hub_weights_warning(current: str | None) -> str:
    """What the settings page of a project whose weights are `current` says about the hub; "" where nothing."""
    return HUB_KEPT_WARNING if hub_weights_training_refusal(current) else ""


def hub_weights_training_refusal(weights: str | None) -> str:
    """Why no training run can use a project's backbone weights `weights` on this deployment; "" where one can. Only
    "hub" while the hub is off: the worker would fail at the run's start (HubWeightsUnavailable)."""
    return HUB_TRAINING_REFUSED if hub_weights_training_held(weights) else ""


def hub_weights_training_held(weights: str | None) -> str:
    """hub_weights_training_refusal's reason alone ("this project's backbone weights come from the model hub, ..."),
    for a line that says first what it means; "" where a run can use `weights`."""
    if weights != HUB or model_hub_on():
        return ""
    return HUB_TRAINING_HELD


def bundled_weights_refusal(weights: str | None, *, backbone: str | None) -> str:
    """Why backbone weights `weights` cannot go with backbone `backbone`; "" where they can. Only "bundled" with a
    backbone that ships no weights: the worker has offline weights for the bundled backbones alone. A `backbone` of
    None (the form refused it already) is not judged."""
    if weights != "bundled" or backbone is None or backbone in BUNDLED_BACKBONES:
        return ""
    others = '"hub", "none"' if model_hub_on() else '"none"'
    return f"Bundled weights exist only for {' and '.join(BUNDLED_BACKBONES)}; use {others} or a registered checkpoint."


def registered_weights_refusal(
    weights: str | None, *, backbone: str | None, registered: list[dict] | None = None
) -> str:
    """Why backbone weights `weights` cannot go with backbone `backbone`; "" where they can. Only registered weights
    (of `registered`, registered_backbone_weights' rows, read here where None) made for another architecture: the
    worker loads them into the backbone, whose layers must match. A `backbone` of None is not judged."""
    weights_id = registered_weights_id(weights)
    if weights_id is None or backbone is None:
        return ""
    rows = registered if registered is not None else registered_backbone_weights()
    chosen = next((row for row in rows if row["id"] == weights_id), None)
    if chosen is None or backbone == chosen["architecture"]:
        return ""
    return f"The registered weights {chosen['name']} are for {chosen['architecture']}; choose that backbone with them."


def weights_choices(current: str | None = None, registered: list[dict] | None = None) -> list[tuple[str, str]]:
    """The weights the settings form lists: keywords, registered weights, listed checkpoints, and the project's
    current value. "hub" is listed where it is off too, its label saying why it cannot be chosen (the form shows it
    disabled: weights_unavailable)."""
    choices = list(WEIGHTS_CHOICES)
    if not model_hub_on():
        said = (
            "current setting; no training run is queued while LABELLOOP_MODEL_HUB is off"
            if current == HUB
            else "unavailable: LABELLOOP_MODEL_HUB is off, the workers run offline"
        )
        choices = [(value, f"From the model hub ({said})" if value == HUB else label) for value, label in choices]
    for row in registered if registered is not None else registered_backbone_weights():
        label = f"Registered: {row['name']} ({row['architecture']}, sha256 {row['sha256'][:12]}…)"
        choices.append((registered_weights_value(row["id"]), label))
    for path in getattr(settings, "LABELLOOP_BACKBONE_WEIGHTS", None) or []:
        choices.append((str(path), f"Checkpoint {path}"))
    if current and current not in {value for value, _ in choices}:
        choices.append((current, f"{current} (current setting)"))
    return choices


def weights_unavailable(current: str | None) -> frozenset[str]:
    """The listed weights a project whose weights are `current` cannot be set to here (shown disabled)."""
    return frozenset(value for value in WEIGHTS_KEYWORDS if hub_weights_refusal(value, current=current))

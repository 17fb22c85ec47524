"""HTML forms for the manager pages."""

from django import forms
from django.conf import settings

from labeling.constants import (
    BACKBONE_CHOICES,
    BACKBONE_FIGURES,
    BUNDLED_BACKBONES,
    DEFAULT_BACKBONE,
    STRATEGY_CHOICES,
    WEIGHTS_KEYWORDS,
    backbone_choices,
    registered_weights_id,
    registered_weights_value,
)
from labeling.models import LabelClass, Project, Role
from labeling.selectors.classes import class_path_parse, class_paths, class_tree
from labeling.selectors.training_seam import registered_backbone_weights


class ProjectCreateForm(forms.ModelForm):
    classes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One class per line; use a/b/c for a hierarchy.",
    )

    def clean_classes(self) -> list[str]:
        """The class list as stored paths, each line checked as an imported label's class is: a list with any bad
        line comes back with every bad line named, and no project is made."""
        paths, problems = [], []
        for number, line in enumerate(self.cleaned_data["classes"].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                paths.append(class_path_parse(line))
            except ValueError as exc:
                problems.append(f"Line {number}: {exc}.")
        if problems:
            raise forms.ValidationError(problems)
        return list(dict.fromkeys(paths))

    class Meta:
        model = Project
        fields = ["name", "task_type", "instructions", "annotations_per_item"]
        labels = {"task_type": "Task", "annotations_per_item": "Annotators per image"}
        help_texts = {
            "task_type": "Single-label: one class per image. Multi-label: any number of classes per image.",
            "instructions": "Shown to annotators on the labeling page when they press i (plain text: line breaks "
            "are kept, markup is shown as typed).",
            "annotations_per_item": "How many people label each image; with more than one, the answers are "
            "combined and disagreements go to review.",
        }


# Backbone weights a manager may pick: the keywords the worker understands, the weights an ML engineer registered
# (manage.py weights_register or the admin: validated, sha256 recorded), then the checkpoints an administrator
# listed (LABELLOOP_BACKBONE_WEIGHTS, paths on the workers). A free path is not accepted: a manager could
# otherwise have the worker open any file, and learn from the run's error whether it exists.
_WEIGHTS_LABELS = {
    "bundled": "Bundled ImageNet weights (EfficientNet-Lite0 and Lite2; work offline)",
    "hub": "From the model hub (needs internet on the worker)",
    "none": "None (random start)",
}
WEIGHTS_CHOICES: tuple[tuple[str, str], ...] = tuple((value, _WEIGHTS_LABELS[value]) for value in WEIGHTS_KEYWORDS)


def weights_choices(current: str | None = None, registered: list[dict] | None = None) -> list[tuple[str, str]]:
    """The weights the settings form accepts: keywords, registered weights, listed checkpoints, and the project's
    current value."""
    choices = list(WEIGHTS_CHOICES)
    for row in registered if registered is not None else registered_backbone_weights():
        label = f"Registered: {row['name']} ({row['architecture']}, sha256 {row['sha256'][:12]}…)"
        choices.append((registered_weights_value(row["id"]), label))
    for path in getattr(settings, "LABELLOOP_BACKBONE_WEIGHTS", None) or []:
        choices.append((str(path), f"Checkpoint {path}"))
    if current and current not in {value for value, _ in choices}:
        choices.append((current, f"{current} (current setting)"))
    return choices


class ProjectSettingsForm(forms.ModelForm):
    """Project settings. Strategy, backbone and weights are choices: the worker implements exactly these strategies
    and runs this backbone offline (labeling/constants.py), and reads weights only from the checkpoints an administrator
    registered; a backbone or weights value already set on the project stays selectable."""

    al_strategy = forms.ChoiceField(
        label="Active-learning strategy",
        choices=STRATEGY_CHOICES,
        help_text="How the queue orders unlabeled images after each model version: the images this picks are "
        "served first.",
    )
    backbone = forms.ChoiceField(
        label="Backbone",
        choices=BACKBONE_CHOICES,
        help_text="The pretrained network whose features the model learns from (measured trade-off below).",
    )
    backbone_weights = forms.ChoiceField(
        label="Backbone weights",
        choices=WEIGHTS_CHOICES,
        help_text='"Bundled": offline ImageNet weights of EfficientNet-Lite0 or Lite2; "hub": download from the '
        'model hub (needs internet on the worker); "none": random start; "registered": weights an ML engineer '
        "registered (checked by their sha256 whenever a worker loads them; choose their architecture as the "
        "backbone); or a checkpoint an administrator listed on the workers (LABELLOOP_BACKBONE_WEIGHTS).",
        # Not Django's "X is not one of the available choices": the answer is the same for every refused value.
        error_messages={"invalid_choice": "Choose one of the listed weights; other files cannot be used."},
    )
    review_sample_rate = forms.FloatField(
        label="Review sample rate", min_value=0.0, max_value=1.0,
        help_text="Share of labels sent to reviewers at random, from 0 to 1 (0.05 = 5 %).",
    )  # fmt: skip
    gold_rate = forms.FloatField(
        label="Gold rate", min_value=0.0, max_value=1.0,
        help_text="Share of served images that are gold images (known answers that measure annotators), 0 to 1.",
    )  # fmt: skip
    holdout_fraction = forms.FloatField(
        label="Holdout fraction", min_value=0.0, max_value=0.99,
        help_text="Share of imported images kept out of training to measure the model without bias (0.1 = 10 %). "
        "Applies to images imported from now on.",
    )  # fmt: skip
    gpus = forms.IntegerField(
        label="GPUs", min_value=1, max_value=64, initial=1,
        help_text="Fine-tune runs train on this many GPUs at once (DistributedDataParallel under torchrun); head "
        "runs use one. A worker that sees fewer GPUs uses the ones it sees.",
    )  # fmt: skip

    class Meta:
        model = Project
        fields = [
            "name",
            "instructions",
            "annotations_per_item",
            "review_sample_rate",
            "gold_rate",
            "holdout_fraction",
            "al_strategy",
            "retrain_every",
            "min_labels_to_train",
            "backbone",
            "backbone_weights",
            "image_size",
            "flip_average",
            "training_mode",
            "gpus",
            "preselect_suggestion",
        ]
        labels = {
            "annotations_per_item": "Annotators per image",
            "retrain_every": "New labels per retraining",
            "min_labels_to_train": "Labels before the first model",
            "image_size": "Image size (pixels)",
            "preselect_suggestion": "Preselect the model's suggestion",
        }
        help_texts = {
            "instructions": "Shown to annotators on the labeling page when they press i (plain text: line breaks "
            "are kept, markup is shown as typed).",
            "annotations_per_item": "How many people label each image; with more than one, the answers are "
            "combined and disagreements go to review. Lowering it resolves the images that then have enough labels; "
            "raising it changes no image labeled already.",
            "retrain_every": "Queue a training run after this many new labels.",
            "min_labels_to_train": "No model is trained before the project has this many labels.",
            "image_size": "Images are resized to this many pixels a side before the backbone sees them.",
            "training_mode": "Auto: fine-tune where the training worker has a GPU (CUDA), else train a head; each run "
            "records which it did and why. Head: train a classifier on cached backbone features (seconds, CPU is "
            "fine). Fine-tune: train the whole network (better with many labels, wants a GPU).",
            "preselect_suggestion": "Highlight the model's top class on each image so Enter accepts it (multi-label: "
            "tick every suggested class the model gives at least 50 %).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        saved = self.instance if self.instance and self.instance.pk else None
        self.registered = {row["id"]: row for row in registered_backbone_weights()}
        # The measured trade-off the page shows beside the choice; new projects' default marked.
        default_size = Project._meta.get_field("image_size").default
        self.backbone_figures = [
            {**row, "default": row["backbone"] == DEFAULT_BACKBONE and row["image_size"] == default_size}
            for row in BACKBONE_FIGURES
        ]
        backbones = backbone_choices(saved.backbone if saved else None)
        for arch in sorted({row["architecture"] for row in self.registered.values()}):
            if arch not in {value for value, _ in backbones}:
                backbones.append((arch, f"{arch} (registered weights only)"))
        self.fields["backbone"].choices = backbones
        self.fields["backbone_weights"].choices = weights_choices(
            saved.backbone_weights if saved else None, list(self.registered.values())
        )

    def clean(self):
        data = super().clean()
        chosen = self.registered.get(registered_weights_id(data.get("backbone_weights")))
        if chosen is not None and data.get("backbone") not in (None, chosen["architecture"]):
            self.add_error(
                "backbone",
                f"The registered weights {chosen['name']} are for {chosen['architecture']}; choose that backbone "
                "with them.",
            )
        if data.get("backbone_weights") == "bundled" and data.get("backbone") not in (None, *BUNDLED_BACKBONES):
            self.add_error(
                "backbone_weights",
                f'Bundled weights exist only for {" and ".join(BUNDLED_BACKBONES)}; use "hub", "none" or a '
                "registered checkpoint.",
            )
        return data


class LabelClassForm(forms.Form):
    name = forms.CharField(max_length=200)
    parent = forms.ModelChoiceField(queryset=LabelClass.objects.none(), required=False)
    hotkey = forms.CharField(
        max_length=1,
        required=False,
        help_text="A flat project's key for the class (empty: the next free one). In a taxonomy each level is "
        "numbered on its own, 1-9 then letters, as the list above shows.",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = LabelClass.objects.filter(project=project, archived=False)
        # Each option shows its path from one read of the tree: LabelClass.path walks the parents a query per level
        # (a 5,000-class, 8-level taxonomy made the settings page 9,000 queries and 37 s).
        paths = class_paths(class_tree(project=project), display=True)
        self.fields["parent"].label_from_instance = lambda c: paths.get(c.pk, c.name)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

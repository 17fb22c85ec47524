"""HTML forms for the manager pages."""

from django import forms
from django.contrib.auth import get_user_model
from django.urls import reverse

from labeling.constants import (
    BACKBONE_CHOICES,
    BACKBONE_FIGURES,
    DEFAULT_BACKBONE,
    DIRECTION_CONTROLS,
    STRATEGY_CHOICES,
    backbone_choices,
)
from labeling.models import LabelClass, Project, Role
from labeling.selectors.backbone_weights import (
    WEIGHTS_CHOICES,
    bundled_weights_refusal,
    hub_weights_refusal,
    hub_weights_warning,
    registered_weights_refusal,
    weights_choices,
    weights_unavailable,
)
from labeling.selectors.classes import class_path_parse, class_paths, class_paths_checked, class_tree
from labeling.selectors.training_seam import registered_backbone_weights
from labeling.services.projects import project_slug


def name_direction_controls_refuse(name: str) -> str:
    """`name`, or a ValidationError naming the direction-control characters it holds (labeling.constants says why
    they are refused)."""
    found = sorted({c for c in name if c in DIRECTION_CONTROLS})
    if found:
        codes = ", ".join(f"U+{ord(c):04X}" for c in found)
        raise forms.ValidationError(
            f"The name contains a right-to-left override or other direction-control character ({codes}), which "
            "makes it display in a different order than it was typed; remove it.",
            code="direction_control",
        )
    return name


# The ranges the settings forms accept; a project saved before they existed keeps its value and works, and the next
# save of its settings asks for one in range. Why these bounds:
# - image_size 32 to 512 px. The backbones shrink an image 32-fold before their last features (EfficientNet's stride
#   is 32), so below 32 px the network sees less than one cell of it; training.ml's RoundConfig refuses < 16 outright.
#   Above: the bundled backbones' native sizes are 224 (Lite0) and 260 px (Lite2), and the measured figures
#   (labeling.constants.BACKBONE_FIGURES) show Lite2 at 260 px already no better than at 192 px for 297 s per 1,000
#   images on the CPU worker. Cost grows with the square of the side: 512 px is about 4x that (20 min per 1,000
#   images) and still covers the hub backbones made for 384-512 px inputs. One worker trains every project, so a
#   larger size (32,767 px: 3.2 G values per image) would stall it for everyone.
# - retrain_every at least 1: a run after every "0 new labels" means nothing (the scheduler reads 0 as 1).
# - min_labels_to_train at least 2: the worker needs two labeled images to train anything (a single-label model
#   learns at least two classes; the cross-validated head needs two examples: training.ml.heads).
# - annotations_per_item 1 to 20: every image waits for that many different annotators before it has a label (the
#   queue never serves an image twice to one person), and each one more is another pass over every image. The most
#   common answer of a handful of people is already settled; 20 leaves room for a large panel, while 1,000 (which the
#   form once took) would leave every image unlabeled for good.
# The upper bounds of the counts keep them inside every database's integer column.
IMAGE_SIZE_RANGE = (32, 512)
RETRAIN_EVERY_RANGE = (1, 1_000_000)
MIN_LABELS_TO_TRAIN_RANGE = (2, 1_000_000)
ANNOTATIONS_PER_ITEM_RANGE = (1, 20)


def _ranged(bounds: tuple[int, int], *, label: str, help_text: str, refusal: str, unit: str = "") -> forms.IntegerField:
    """A whole-number field accepting `bounds` (inclusive) whose refusal names the range, whichever end it missed."""
    low, high = bounds
    message = f"{refusal} from {low:,} to {high:,}{unit}."
    return forms.IntegerField(
        label=label, min_value=low, max_value=high, help_text=help_text,
        error_messages={"min_value": message, "max_value": message},
    )  # fmt: skip


def annotations_per_item_field(help_text: str) -> forms.IntegerField:
    field = _ranged(
        ANNOTATIONS_PER_ITEM_RANGE,
        label="Annotators per image",
        help_text=help_text,
        refusal="Each image needs at least one annotator, and a team rarely has more than twenty: choose",
    )
    # A declared field does not take the model field's default: without it the new-project form came up empty, and
    # the browser would not send it (the input is required).
    field.initial = Project._meta.get_field("annotations_per_item").default
    return field


_OVERLAP_HELP = (
    "How many people label each image; with more than one, the answers are combined and disagreements go to review."
)


class ProjectCreateForm(forms.ModelForm):
    annotations_per_item = annotations_per_item_field(_OVERLAP_HELP)
    classes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One class per line; use a/b/c for a hierarchy.",
    )

    slug = forms.CharField(
        required=False,
        max_length=70,
        label="Slug",
        help_text="The project's name in its web address (/p/slug/) and in labelloop commands: letters a-z, digits, "
        "hyphens and underscores; it cannot be changed later. Left empty, it is made from the name.",
    )
    field_order = ["name", "slug"]

    def clean_slug(self) -> str:
        """The slug asked for, as it will be stored; "" where none was. One that leaves nothing, is taken, or is not
        a slug as typed (spaces, signs, Cyrillic) is refused, the last with the slug that would do: the project would
        otherwise live at an address nobody asked for."""
        asked = self.cleaned_data["slug"].strip()
        if not asked:
            return ""
        stored = project_slug(asked)
        if not stored:
            raise forms.ValidationError("Enter a slug of letters, digits, hyphens or underscores.")
        if Project.objects.filter(slug=stored).exists():
            raise forms.ValidationError(
                f"A project with the slug {stored!r} exists: choose another, or leave the slug out to have one made "
                "from the name."
            )
        if stored != asked.lower():  # said, not rewritten behind the user's back
            raise forms.ValidationError(
                f"A slug is letters a-z, digits, hyphens and underscores, with no spaces: {stored!r} would do."
            )
        return stored

    def clean_classes(self) -> list[str]:
        """The class list as stored paths, each line checked as an imported label's class is: a list with any bad
        line comes back with every bad line named, and no project is made."""
        lines = enumerate(self.cleaned_data["classes"].splitlines(), start=1)
        paths, problems = class_paths_checked((f"Line {number}", line) for number, line in lines if line.strip())
        if problems:
            raise forms.ValidationError(problems)
        return paths

    def clean_name(self) -> str:
        return name_direction_controls_refuse(self.cleaned_data["name"])

    class Meta:
        model = Project
        fields = ["name", "task_type", "instructions", "annotations_per_item"]
        labels = {"task_type": "Task"}
        help_texts = {
            "task_type": "Single-label: one class per image. Multi-label: any number of classes per image.",
            "instructions": "Shown to annotators on the labeling page when they press i (plain text: line breaks "
            "are kept, markup is shown as typed).",
        }


def backbone_pairing_check(form: forms.Form, data: dict, *, registered: list[dict] | None = None) -> None:
    """Refuse, on `form`, backbone weights that do not go with the backbone in its cleaned `data` (the rules:
    labeling.selectors.backbone_weights): registered weights for another architecture on "backbone", "bundled" for a
    backbone without bundled weights on "backbone_weights". The settings form and the admin's project form both ask
    it, so both refuse in the same words. `registered`: registered_backbone_weights' rows, read where None."""
    weights, backbone = data.get("backbone_weights"), data.get("backbone")
    refusal = registered_weights_refusal(weights, backbone=backbone, registered=registered)
    if refusal:
        form.add_error("backbone", refusal)
    refusal = bundled_weights_refusal(weights, backbone=backbone)
    if refusal:
        form.add_error("backbone_weights", refusal)


class _WeightsSelect(forms.Select):
    """A menu whose options in `unavailable` are shown but cannot be picked (their labels say why)."""

    unavailable: frozenset[str] = frozenset()

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.unavailable:
            option["attrs"]["disabled"] = True
        return option


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
        widget=_WeightsSelect,
        help_text='"Bundled": offline ImageNet weights of EfficientNet-Lite0 or Lite2; "hub": download from the '
        "model hub (needs internet on the workers: only where an administrator set LABELLOOP_MODEL_HUB=on); "
        '"none": random start; "registered": weights an ML engineer '
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
    annotations_per_item = annotations_per_item_field(
        f"{_OVERLAP_HELP} Lowering it resolves the images that then have enough labels; raising it changes no image "
        "labeled already."
    )
    retrain_every = _ranged(
        RETRAIN_EVERY_RANGE,
        label="New labels per retraining",
        help_text="Queue a training run after this many new labels.",
        refusal="A run needs at least one new label to learn from: choose",
    )
    min_labels_to_train = _ranged(
        MIN_LABELS_TO_TRAIN_RANGE,
        label="Labels before the first model",
        help_text="No model is trained before the project has this many labels (at least 2: a model needs two "
        "labeled images to learn from).",
        refusal="A model needs at least two labeled images to learn from: choose",
    )
    image_size = _ranged(
        IMAGE_SIZE_RANGE,
        label="Image size (pixels)",
        help_text="Images are resized to this many pixels a side before the backbone sees them (32 to 512; cost "
        "grows with the square of the size: see the measured figures below).",
        refusal="The backbones need at least 32 pixels a side, and above 512 one project's training would hold up "
        "the shared worker for every project: choose an image size",
        unit=" pixels",
    )
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
        labels = {"preselect_suggestion": "Preselect the model's suggestion"}
        help_texts = {
            "instructions": "Shown to annotators on the labeling page when they press i (plain text: line breaks "
            "are kept, markup is shown as typed).",
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
        self.current_weights = current = saved.backbone_weights if saved else None
        self.fields["backbone_weights"].choices = weights_choices(current, list(self.registered.values()))
        self.fields["backbone_weights"].widget.unavailable = weights_unavailable(current)
        self.hub_warning = hub_weights_warning(current)  # the page shows it above the form

    def clean_backbone_weights(self) -> str:
        value = self.cleaned_data["backbone_weights"]
        refusal = hub_weights_refusal(value, current=self.current_weights)
        if refusal:
            raise forms.ValidationError(refusal, code="model_hub_off")
        return value

    def clean_name(self) -> str:
        return name_direction_controls_refuse(self.cleaned_data["name"])

    def clean(self):
        data = super().clean()
        backbone_pairing_check(self, data, registered=list(self.registered.values()))
        return data


class LabelClassForm(forms.Form):
    name = forms.CharField(max_length=200)
    parent = forms.ModelChoiceField(queryset=LabelClass.objects.none(), required=False)
    # Shown instead of `parent` where the class table is paged: a menu of thousands of paths is too heavy to draw.
    parent_path = forms.CharField(
        max_length=2600,
        required=False,
        label="Parent",
        help_text="The parent's path as the table shows it (“animals / mammals”); empty for a top-level class.",
        widget=forms.TextInput(attrs={"list": "class-parent-paths", "autocomplete": "off"}),
    )
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
        # (a 5,000-class, 8-level taxonomy made the settings page 9,000 queries and 37 s). Read when an option is
        # first drawn: the settings page draws the parents from its own class table (selectors.class_table).
        paths: dict[int, str] = {}

        def label(c: LabelClass) -> str:
            if not paths:
                paths.update(class_paths(class_tree(project=project), display=True))
            return paths.get(c.pk, c.name)

        self.fields["parent"].label_from_instance = label
        self.project = project

    def clean(self):
        """A parent typed as a path (`parent_path`, the form of a project with too many classes for a menu): the
        active class whose path it is, spelled as the pages show it ("a / b") or stored ("a/b")."""
        data = super().clean()
        typed = (data.get("parent_path") or "").strip()
        if typed and not data.get("parent"):
            try:
                wanted = class_path_parse(typed)
            except ValueError as exc:
                self.add_error("parent_path", f"Not a class path: {exc}.")
                return data
            paths = class_paths(class_tree(project=self.project))
            active = LabelClass.objects.filter(project=self.project, archived=False)
            found = active.filter(pk__in=[pk for pk, path in paths.items() if path == wanted]).first()
            if found is None:
                self.add_error("parent_path", f"No class has the path “{typed}” (archived classes take no new class).")
            data["parent"] = found
        return data


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def clean_username(self) -> str:
        """Only an existing account can join: say who creates one (staff, in the admin), since no page here can."""
        username = self.cleaned_data["username"]
        if not get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError(
                f"No user named “{username}”. A staff member creates accounts in the admin, at "
                f"{reverse('admin:auth_user_add')} (the first staff account: manage.py createsuperuser); then save "
                "the member here.",
                code="unknown_user",
            )
        return username

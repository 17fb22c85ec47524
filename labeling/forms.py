"""HTML forms for the manager pages."""

from django import forms

from labeling.choices import BACKBONE_CHOICES, BUNDLED_BACKBONE, STRATEGY_CHOICES, backbone_choices
from labeling.models import LabelClass, Project, Role


class ProjectCreateForm(forms.ModelForm):
    classes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One class per line; use a/b/c for a hierarchy.",
    )

    class Meta:
        model = Project
        fields = ["name", "task_type", "instructions", "annotations_per_item"]
        labels = {"task_type": "Task", "annotations_per_item": "Annotators per image"}
        help_texts = {
            "task_type": "Single-label: one class per image. Multi-label: any number of classes per image.",
            "instructions": "Shown to annotators above every image.",
            "annotations_per_item": "How many people label each image; with more than one, the answers are "
            "combined and disagreements go to review.",
        }


class ProjectSettingsForm(forms.ModelForm):
    """Project settings. Strategy and backbone are choices: the worker implements exactly these strategies and
    runs this backbone offline (labeling/choices.py); a backbone already set on the project stays selectable."""

    al_strategy = forms.ChoiceField(
        label="Active-learning strategy",
        choices=STRATEGY_CHOICES,
        help_text="How the queue orders unlabeled images after each model version: the images this picks are "
        "served first.",
    )
    backbone = forms.ChoiceField(
        label="Backbone",
        choices=BACKBONE_CHOICES,
        help_text="The pretrained network whose features the model learns from.",
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
            "backbone_weights": "Backbone weights",
            "image_size": "Image size (pixels)",
            "preselect_suggestion": "Preselect the model's suggestion",
        }
        help_texts = {
            "instructions": "Shown to annotators above every image.",
            "annotations_per_item": "How many people label each image; with more than one, the answers are "
            "combined and disagreements go to review.",
            "retrain_every": "Queue a training run after this many new labels.",
            "min_labels_to_train": "No model is trained before the project has this many labels.",
            "backbone_weights": '"bundled" (offline ImageNet weights of EfficientNet-Lite0), "hub" (download from '
            'the model hub; needs internet on the worker), "none" (random start), or a checkpoint path on the '
            "worker.",
            "image_size": "Images are resized to this many pixels a side before the backbone sees them.",
            "training_mode": "Head: train a classifier on cached backbone features (seconds, CPU is fine). "
            "Fine-tune: train the whole network (better with many labels, wants a GPU).",
            "preselect_suggestion": "Highlight the model's top class on each image so Enter accepts it.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.backbone if self.instance and self.instance.pk else None
        self.fields["backbone"].choices = backbone_choices(current)

    def clean(self):
        data = super().clean()
        if data.get("backbone_weights") == "bundled" and data.get("backbone") not in (None, BUNDLED_BACKBONE):
            self.add_error(
                "backbone_weights",
                f'Bundled weights exist only for {BUNDLED_BACKBONE}; use "hub", "none" or a checkpoint path.',
            )
        return data


class LabelClassForm(forms.Form):
    name = forms.CharField(max_length=200)
    parent = forms.ModelChoiceField(queryset=LabelClass.objects.none(), required=False)
    hotkey = forms.CharField(max_length=1, required=False)

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = LabelClass.objects.filter(project=project, archived=False)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

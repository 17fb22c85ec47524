"""HTML forms for the manager pages."""

from django import forms

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


class ProjectSettingsForm(forms.ModelForm):
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

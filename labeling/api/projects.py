"""API: the projects you belong to (with your role and capabilities), creating a project (project creators), its label
classes, creating, renaming and archiving a class.

A new project is checked by the pages' own forms (the new-project page's, and the settings page's for the settings it
may also be given), so the API and `manage.py project_create` accept exactly what the pages accept, with the same
ranges and messages; any refusal creates nothing."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import (
    PROJECT_PERMISSIONS,
    FiniteFloatField,
    IdCursorPagination,
    IdField,
    ProjectView,
)
from labeling.constants import BUNDLED_BACKBONES, STRATEGY_CHOICES, TRAINING_MODE_CHOICES
from labeling.forms import ProjectCreateForm, ProjectSettingsForm
from labeling.models import (
    LabelClass,
    Membership,
    Project,
    Role,
    TaskType,
)
from labeling.permissions import CAPABILITIES, CanCreateProjects, Capability
from labeling.selectors.classes import class_path_parse
from labeling.services import projects as project_services


class ProjectOutputSerializer(serializers.ModelSerializer):
    al_strategy = serializers.ChoiceField(
        choices=STRATEGY_CHOICES,
        read_only=True,
        help_text="Active-learning strategy that orders the queue: "
        + "; ".join(f"{value}: {label}" for value, label in STRATEGY_CHOICES),
    )
    backbone = serializers.CharField(
        read_only=True,
        help_text=f"Pretrained timm backbone; {' and '.join(BUNDLED_BACKBONES)} run offline with bundled weights, "
        "others need hub, registered or checkpoint weights.",
    )
    role = serializers.SerializerMethodField()
    capabilities = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "slug", "name", "task_type", "instructions", "annotations_per_item", "review_sample_rate",
                  "holdout_fraction", "al_strategy", "retrain_every", "min_labels_to_train", "backbone", "image_size",
                  "flip_average", "training_mode", "created_at", "role", "capabilities"]  # fmt: skip

    def _role(self, obj) -> str:
        roles = self.context.get("roles") or {}
        return roles.get(obj.pk, "")

    def get_role(self, obj) -> str:
        return self._role(obj)

    def get_capabilities(self, obj) -> list[str]:
        return sorted(CAPABILITIES.get(self._role(obj), frozenset()))


# The new-project page's fields. The settings page's others may be given at creation too: a script has no page to
# set them on afterwards. Each is checked by the form of the page it is on.
CREATE_FIELDS = ("name", "task_type", "instructions", "annotations_per_item")
MAX_CLASSES = 10_000


class ProjectInputInvalid(Exception):
    """A new project's input was refused; `errors` maps each field to its messages. Nothing was created."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))
        self.errors = errors


def settings_fields() -> list[str]:
    """The settings page's fields that the new-project page lacks."""
    return [name for name in ProjectSettingsForm._meta.fields if name not in CREATE_FIELDS]


def _class_paths(entries: list[str]) -> tuple[list[str], list[str]]:
    """The stored paths of a class list (each entry one class path, "a/b/c" for a hierarchy), checked by the rule
    of the new-project page's class box (class_path_parse); (paths, problems), every bad entry named."""
    paths, problems = [], []
    for number, entry in enumerate(entries, start=1):
        try:
            paths.append(class_path_parse(entry))
        except ValueError as exc:
            problems.append(f"Class {number} ({entry[:60]!r}): {exc}.")
    return list(dict.fromkeys(paths)), problems


def _slug_free(slug: str) -> str:
    """The slug a project asked for, as it will be stored; a taken or empty one is refused (the service would
    otherwise pick "<slug>-2", and a script would then talk to an address it did not ask for)."""
    stored = slugify(slug)[:70]
    if not stored:
        raise ProjectInputInvalid({"slug": ["Enter a slug of letters, digits, hyphens or underscores."]})
    if Project.objects.filter(slug=stored).exists():
        raise ProjectInputInvalid({"slug": [f"A project with the slug {stored!r} exists: choose another, or leave "
                                            "the slug out to have one made from the name."]})  # fmt: skip
    return stored


def project_create_checked(*, created_by, data: dict, classes: list[str], slug: str = "") -> Project:
    """Create a project (its creator its manager) with its classes, from input checked as the pages check it: the
    new-project form for `CREATE_FIELDS`, the settings form for the settings (only those given are set; the rest
    keep the model's defaults), class_path_parse for each class. ProjectInputInvalid, creating nothing, otherwise.

    Precondition: the caller checked that `created_by` may create projects (the API does; the command acts for
    the operator)."""
    defaults = model_to_dict(Project(), fields=ProjectSettingsForm._meta.fields)
    given = {
        key: value for key, value in data.items() if value is not None and key in (*CREATE_FIELDS, *settings_fields())
    }
    created = ProjectCreateForm(data={"task_type": TaskType.SINGLE, **defaults, **given, "classes": ""})
    configured = ProjectSettingsForm(data={**defaults, **given})
    errors: dict[str, list[str]] = {}
    for form in (created, configured):
        for field, messages in form.errors.items():
            found = errors.setdefault("non_field_errors" if field == "__all__" else field, [])
            found += [message for message in messages if message not in found]
    paths, problems = _class_paths(classes)
    if problems:
        errors["classes"] = problems
    if slug:
        try:
            slug = _slug_free(slug)
        except ProjectInputInvalid as exc:
            errors.update(exc.errors)
    if errors:
        raise ProjectInputInvalid(errors)
    values = {name: created.cleaned_data[name] for name in CREATE_FIELDS}
    values.update({name: configured.cleaned_data[name] for name in settings_fields() if name in given})
    try:
        with transaction.atomic():  # as the page: the project comes with all of its classes or not at all
            project = project_services.project_create(created_by=created_by, slug=slug, **values)
            project_services.label_classes_from_paths(project=project, paths=paths)
    except DjangoValidationError as exc:
        found = exc.message_dict if hasattr(exc, "error_dict") else {"classes": exc.messages}
        raise ProjectInputInvalid({"non_field_errors" if k == "__all__" else k: v for k, v in found.items()}) from exc
    return project


def _like_form(form: type, name: str, kind: type, **kwargs) -> serializers.Field:
    """An optional field with the range, help and range messages of the page form's field `name`."""
    field = form.base_fields[name]
    messages = {code: field.error_messages[code] for code in ("min_value", "max_value") if code in field.error_messages}
    return kind(required=False, min_value=field.min_value, max_value=field.max_value, error_messages=messages,
                help_text=str(field.help_text), **kwargs)  # fmt: skip


class ProjectCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(
        max_length=70, required=False, help_text="The project's address (/p/<slug>/, /api/projects/<slug>/); "
        "default: made from the name. A slug another project has is refused (400).",
    )  # fmt: skip
    task_type = serializers.ChoiceField(
        choices=TaskType.choices, default=TaskType.SINGLE,
        help_text="single: one class per image; multi: any number of classes per image.",
    )  # fmt: skip
    instructions = serializers.CharField(
        required=False, allow_blank=True, help_text="Shown to annotators (plain text)."
    )
    annotations_per_item = _like_form(ProjectCreateForm, "annotations_per_item", serializers.IntegerField)
    classes = serializers.ListField(
        child=serializers.CharField(max_length=3000, allow_blank=True, trim_whitespace=False),
        required=False, max_length=MAX_CLASSES,
        help_text='Class paths, one class each: "cat", or "animals/cat" (also "animals / cat") for a taxonomy, whose '
        "parents are made too. Checked as the new-project page checks its class box; every bad entry is named.",
    )  # fmt: skip
    review_sample_rate = _like_form(ProjectSettingsForm, "review_sample_rate", FiniteFloatField)
    gold_rate = _like_form(ProjectSettingsForm, "gold_rate", FiniteFloatField)
    holdout_fraction = _like_form(ProjectSettingsForm, "holdout_fraction", FiniteFloatField)
    al_strategy = serializers.ChoiceField(choices=STRATEGY_CHOICES, required=False)
    retrain_every = _like_form(ProjectSettingsForm, "retrain_every", serializers.IntegerField)
    min_labels_to_train = _like_form(ProjectSettingsForm, "min_labels_to_train", serializers.IntegerField)
    backbone = serializers.CharField(
        max_length=100, required=False, help_text=f"{' or '.join(BUNDLED_BACKBONES)}, or the architecture of "
        "registered weights (the settings page's choices).",
    )  # fmt: skip
    backbone_weights = serializers.CharField(
        max_length=300, required=False, help_text="bundled, hub, none, registered:<id> or a checkpoint an "
        "administrator listed (the settings page's choices).",
    )  # fmt: skip
    image_size = _like_form(ProjectSettingsForm, "image_size", serializers.IntegerField)
    flip_average = serializers.BooleanField(required=False)
    training_mode = serializers.ChoiceField(choices=TRAINING_MODE_CHOICES, required=False)
    gpus = _like_form(ProjectSettingsForm, "gpus", serializers.IntegerField)
    preselect_suggestion = serializers.BooleanField(required=False)


class ProjectListApi(generics.ListAPIView):
    """Projects the user belongs to, with their role in each."""

    permission_classes = PROJECT_PERMISSIONS
    serializer_class = ProjectOutputSerializer
    pagination_class = IdCursorPagination

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), CanCreateProjects()]
        return super().get_permissions()

    @extend_schema(
        description='Create a project (staff and the "project creators" group); you become its manager. Checked '
        "as the new-project and settings pages check theirs; a refusal names each field and creates nothing.",
        request=ProjectCreateInputSerializer,
        responses={
            201: ProjectOutputSerializer,
            400: OpenApiResponse(description="Refused input, by field; nothing was created."),
            403: OpenApiResponse(description="You may not create projects (staff and project creators may)."),
        },
    )
    def post(self, request):
        data = ProjectCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        try:
            project = project_create_checked(
                created_by=request.user, data=values, classes=values.pop("classes", []), slug=values.pop("slug", "")
            )
        except ProjectInputInvalid as exc:
            raise ApiValidationError(exc.errors) from exc
        answer = ProjectOutputSerializer(project, context={"roles": {project.pk: Role.MANAGER}}).data
        return Response(
            answer, status=status.HTTP_201_CREATED, headers={"Location": reverse("api-project", args=[project.slug])}
        )

    def get_queryset(self):
        return Project.objects.filter(memberships__user=self.request.user).order_by("id")

    def get_serializer_context(self):
        roles = dict(Membership.objects.filter(user=self.request.user).values_list("project_id", "role"))
        return {**super().get_serializer_context(), "roles": roles}


class ProjectDetailApi(ProjectView, APIView):
    """One project: its settings, your role in it and what that role may do."""

    @extend_schema(responses={200: ProjectOutputSerializer})
    def get(self, request, slug: str):
        context = {"roles": {self.project.pk: self.role}}
        return Response(ProjectOutputSerializer(self.project, context=context).data)


class ClassOutputSerializer(serializers.ModelSerializer):
    path = serializers.CharField(read_only=True)

    class Meta:
        model = LabelClass
        fields = ["id", "name", "path", "parent", "hotkey", "color", "order", "archived"]


class ClassListApi(ProjectView, generics.ListAPIView):
    """The project's label taxonomy (archived classes included, flagged)."""

    serializer_class = ClassOutputSerializer
    pagination_class = None

    def get_queryset(self):
        return LabelClass.objects.filter(project=self.project).select_related("parent__parent__parent")


class ClassCreateApi(ProjectView, APIView):
    """Add a label class (managers); `parent` nests it in the taxonomy; without `hotkey` a free one is chosen."""

    capability = Capability.MANAGE

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        parent = IdField(required=False, allow_null=True)
        hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True)
        color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)

    @extend_schema(request=InputSerializer, responses={201: ClassOutputSerializer})
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        parent = None
        if values.get("parent"):
            parent = LabelClass.objects.filter(project=self.project, pk=values["parent"]).first()
            if parent is None:
                raise ApiValidationError({"parent": "No such class in this project."})
        try:
            label_class = project_services.label_class_create(
                project=self.project,
                name=values["name"],
                parent=parent,
                hotkey=values.get("hotkey") or None,
                color=values.get("color", ""),
            )
        except DjangoValidationError as exc:
            raise ApiValidationError({"detail": exc.messages}) from exc
        return Response(ClassOutputSerializer(label_class).data, status=status.HTTP_201_CREATED)


class ClassUpdateApi(ProjectView, APIView):
    """Rename a label class or archive / restore it (managers). Its id, labels, hotkey and place in the taxonomy
    stay; a rename changes its stored path (and its subclasses'), so the next dataset export is a new version."""

    capability = Capability.MANAGE

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        archived = serializers.BooleanField(required=False)

    @extend_schema(request=InputSerializer, responses={200: ClassOutputSerializer})
    def patch(self, request, slug: str, class_id: int):
        label_class = LabelClass.objects.filter(project=self.project, pk=class_id).first()
        if label_class is None:
            raise NotFound("No such class in this project.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if not values:
            raise ApiValidationError({"detail": "Send a new `name`, `archived`, or both."})
        try:
            with transaction.atomic():
                if "name" in values:
                    label_class = project_services.label_class_rename(
                        project=self.project, class_id=label_class.pk, name=values["name"]
                    )
                if "archived" in values:
                    label_class = project_services.label_class_archive(
                        project=self.project, class_id=label_class.pk, archived=values["archived"]
                    )
        except DjangoValidationError as exc:
            raise ApiValidationError({"name": exc.messages}) from exc
        return Response(ClassOutputSerializer(label_class).data)

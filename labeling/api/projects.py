"""API: the projects you belong to (with your role and capabilities), creating a project (project creators), its label
classes, creating, renaming and archiving a class.

A new project is checked as the pages check theirs (labeling.services.project_checked, which `manage.py
project_create` calls too); a field this API does not know is refused, not ignored; any refusal creates nothing."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.fields import empty
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
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
from labeling.selectors.class_table import class_table
from labeling.services import projects as project_services
from labeling.services.project_checked import MAX_CLASSES, ProjectInputInvalid, project_create_checked


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


def _like_form(form: type, name: str, kind: type, **kwargs) -> serializers.Field:
    """An optional field with the range, help and range messages of the page form's field `name`."""
    field = form.base_fields[name]
    messages = {code: field.error_messages[code] for code in ("min_value", "max_value") if code in field.error_messages}
    return kind(required=False, min_value=field.min_value, max_value=field.max_value, error_messages=messages,
                help_text=str(field.help_text), **kwargs)  # fmt: skip


class _GivenBooleanField(serializers.BooleanField):
    """A setting that, left out, keeps the page's default in a form-encoded body too: DRF reads a boolean missing
    from HTML form data as an unticked checkbox (False), so `name=x` alone would turn flip_average off while the
    same request in JSON keeps it on."""

    default_empty_html = empty


def _setting_boolean(name: str) -> _GivenBooleanField:
    """An optional on/off setting, with the model's help and its default (that of a project made on the page)."""
    field = Project._meta.get_field(name)
    said = f"{field.help_text} " if field.help_text else ""
    return _GivenBooleanField(required=False, help_text=f"{said}Left out: {'on' if field.default else 'off'}.")


class ProjectCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    # Text, not a SlugField: the new-project form's clean_slug judges it (in project_create_checked), so a slug that
    # is not one is refused in the page's words, with the slug that would do.
    slug = serializers.CharField(
        max_length=70, required=False, help_text="The project's address (/p/<slug>/, /api/projects/<slug>/); "
        "default: made from the name. A slug another project has, or one that is not a slug (\"Bad Slug!\"), is "
        "refused (400), the latter with the slug that would do.",
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
        "administrator listed (the settings page's choices); hub only where LABELLOOP_MODEL_HUB is on (400 otherwise).",
    )  # fmt: skip
    image_size = _like_form(ProjectSettingsForm, "image_size", serializers.IntegerField)
    flip_average = _setting_boolean("flip_average")
    training_mode = serializers.ChoiceField(choices=TRAINING_MODE_CHOICES, required=False)
    gpus = _like_form(ProjectSettingsForm, "gpus", serializers.IntegerField)
    preselect_suggestion = _setting_boolean("preselect_suggestion")

    # Sent by a browser form posting with a session; not a setting.
    IGNORED = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data):
        """The fields' values; a field this API does not know is refused (400, naming it) rather than ignored, so a
        misspelt setting ("flip_averages") or one a project cannot be given here ("owner") is not silently
        dropped while the project is made without it."""
        errors: dict = {}
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors, values = dict(exc.detail), {}
        known = {*self.fields, *self.IGNORED}
        unknown = sorted(key for key in data if key not in known) if isinstance(data, Mapping) else []
        if unknown:
            found = errors.setdefault(api_settings.NON_FIELD_ERRORS_KEY, [])
            shown = ", ".join(key if key.isidentifier() else repr(key[:60]) for key in unknown)  # "", "a b": quoted
            found.append(f"Unknown field(s): {shown}. Known: {', '.join(self.fields)}.")
        if errors:
            raise serializers.ValidationError(errors)
        return values


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
        "as the new-project and settings pages check theirs; a refusal names each field and creates nothing, and a "
        "field not listed here is refused by name. Settings left out keep a page-made project's defaults, in JSON "
        "and form-encoded bodies alike.",
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
    path = serializers.CharField(read_only=True, help_text='The path as pages show it, levels joined by " / ".')
    stored_path = serializers.SerializerMethodField(
        help_text="The path as dataset exports (labels.csv, manifest.json), the model export's config.json and the "
        'prediction service name the class: levels joined by "/" ("animals/cat"). Match predictions to classes by it.'
    )
    hotkey = serializers.CharField(
        read_only=True,
        help_text="The stored hotkey: the key of a flat project's class on the labeling page (unless the page keeps "
        "that key for itself). In a taxonomy the page numbers every level on its own: see `keys`.",
    )
    keys = serializers.SerializerMethodField(
        help_text='The keys that pick this class on the labeling and review pages, one per level from the root ("1", '
        '"1", "a": 1 opens the first top class, 1 its first subclass, a the class); empty for an archived class, and '
        'ending in "" where a level ran out of keys.'
    )

    class Meta:
        model = LabelClass
        fields = ["id", "name", "path", "stored_path", "parent", "hotkey", "keys", "color", "order", "archived"]

    def _table_row(self, label_class: LabelClass) -> LabelClass:
        """`label_class` as the class table gives it (keys and stored path worked out): the list's own rows, or one
        table read for a single class's answer (create, rename)."""
        if hasattr(label_class, "label_keys"):  # worked out for the whole list at once (ClassListApi)
            return label_class
        if not hasattr(label_class, "_table_row"):
            [label_class._table_row] = class_table(project=label_class.project).classes([label_class.pk])
        return label_class._table_row

    def get_keys(self, label_class: LabelClass) -> list[str]:
        return self._table_row(label_class).label_keys

    def get_stored_path(self, label_class: LabelClass) -> str:
        return self._table_row(label_class).stored_path


class ClassListApi(ProjectView, generics.ListAPIView):
    """The project's label taxonomy (archived classes included, flagged)."""

    serializer_class = ClassOutputSerializer
    pagination_class = None

    def list(self, request, *args, **kwargs):
        # The settings page's table: one read of the classes, paths and labeling keys worked out from it.
        table = class_table(project=self.project)
        classes = table.classes([row[0] for row in table.rows])
        return Response(self.get_serializer(classes, many=True).data)


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
    stay; a rename changes its stored path (and its subclasses'), so the next dataset export is a new version.
    Archiving a class archives every class under it, restoring restores them; a class under an archived class is
    not restored alone (400)."""

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
        field = "name"
        try:
            with transaction.atomic():
                if "name" in values:
                    label_class = project_services.label_class_rename(
                        project=self.project, class_id=label_class.pk, name=values["name"]
                    )
                if "archived" in values:
                    field = "archived"  # a restore of a class under an archived one is refused
                    label_class = project_services.label_class_archive(
                        project=self.project, class_id=label_class.pk, archived=values["archived"]
                    )
        except DjangoValidationError as exc:
            raise ApiValidationError({field: exc.messages}) from exc
        return Response(ClassOutputSerializer(label_class).data)

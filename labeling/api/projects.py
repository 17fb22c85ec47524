"""API: the projects you belong to (with your role and capabilities), their label classes, creating, renaming and
archiving a class."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import (
    PROJECT_PERMISSIONS,
    IdCursorPagination,
    IdField,
    ProjectView,
)
from labeling.constants import BUNDLED_BACKBONES, STRATEGY_CHOICES
from labeling.models import (
    LabelClass,
    Membership,
    Project,
)
from labeling.permissions import CAPABILITIES, Capability
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


class ProjectListApi(generics.ListAPIView):
    """Projects the user belongs to, with their role in each."""

    permission_classes = PROJECT_PERMISSIONS
    serializer_class = ProjectOutputSerializer
    pagination_class = IdCursorPagination

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

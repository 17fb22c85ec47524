"""API: the annotation and review history of a project (read-only here; writes are the queue API's)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from labeling.api.base import (
    IdCursorPagination,
    IdField,
    ProjectView,
)
from labeling.models import (
    Annotation,
    Review,
)
from labeling.permissions import Capability


class AnnotationOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    classes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "item", "user", "classes", "skipped", "undoes", "seconds_spent", "created_at"]


class AnnotationFilterSerializer(serializers.Serializer):
    item = IdField(required=False)
    user = serializers.CharField(required=False, max_length=150, help_text="username")
    created_after = serializers.DateTimeField(required=False)


class AnnotationListApi(ProjectView, generics.ListAPIView):
    """Every annotation row (append-only history: undo rows point at what they withdraw)."""

    capability = Capability.VIEW_METRICS
    serializer_class = AnnotationOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        filters = AnnotationFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = Annotation.objects.filter(item__project=self.project).select_related("user").prefetch_related("classes")
        if f.get("item"):
            qs = qs.filter(item_id=f["item"])
        if f.get("user"):
            qs = qs.filter(user__username=f["user"])
        if f.get("created_after"):
            qs = qs.filter(created_at__gt=f["created_after"])
        return qs

    @extend_schema(parameters=[AnnotationFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReviewOutputSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    item = serializers.IntegerField(source="annotation.item_id")
    corrected_classes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Review
        fields = ["id", "annotation", "item", "reviewer", "verdict", "corrected_classes", "comment", "created_at"]


class ReviewListApi(ProjectView, generics.ListAPIView):
    """Every review verdict (accept, reject, correct) with the reviewer and any corrected classes."""

    capability = Capability.VIEW_METRICS
    serializer_class = ReviewOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return (
            Review.objects.filter(annotation__item__project=self.project)
            .select_related("reviewer", "annotation")
            .prefetch_related("corrected_classes")
        )

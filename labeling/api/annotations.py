"""API: the annotation and review history of a project (read-only, writes are the queue API's), and the undo of a
reviewer's last verdict (labeling.services.reviews.undo)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

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
from labeling.services import reviews as review_services


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


class ReviewUndoConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class ReviewUndoApi(ProjectView, APIView):
    """Withdraw the caller's last review verdict in this project (within the undo grace period, as a label's undo).

    The verdict is removed, the review tasks it closed are open again and the item's label is as it was before it.
    With `review_id` (the `id` of a verdict in the reviews list) only that verdict is withdrawn, and only while it is
    the caller's last: a retry of an undo whose answer was lost gets 404 (the verdict is gone) instead of withdrawing
    the verdict before.
    """

    capability = Capability.REVIEW

    class InputSerializer(serializers.Serializer):
        review_id = IdField(
            required=False,
            allow_null=True,
            default=None,
            help_text="The verdict to withdraw; 409 (nothing changed) unless it is the caller's last undoable one; 404 "
            "when it is no verdict of the caller's in this project (one already undone included).",
        )

    class OutputSerializer(serializers.Serializer):
        undone_review_id = serializers.IntegerField()
        verdict = serializers.CharField()
        item = serializers.IntegerField()
        reopened_tasks = serializers.ListField(
            child=serializers.IntegerField(), help_text="The review tasks open again, the one to judge first first."
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            404: OpenApiResponse(description="No such verdict of yours in this project; nothing changed."),
            409: OpenApiResponse(description="Nothing to undo, or not your last verdict; nothing changed."),
        },
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            undone = review_services.review_undo(
                reviewer=request.user, project=self.project, review_id=data.validated_data["review_id"]
            )
        except review_services.ReviewUndoConflict as exc:
            raise ReviewUndoConflict(str(exc)) from exc
        except Review.DoesNotExist as exc:
            raise NotFound(str(exc)) from exc
        return Response(
            {
                "undone_review_id": undone.review_id,
                "verdict": undone.verdict,
                "item": undone.item_id,
                "reopened_tasks": [task.pk for task in undone.reopened],
            }
        )

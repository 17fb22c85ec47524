"""REST API for the labeling queue: next item, annotate, skip, undo, the caller's skips. Same services as the page.

Errors: 400 bad input, 404 not a member / item of another project, 403 role too weak,
409 the item no longer takes this user's annotation (or nothing to undo).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import MAX_ID, IdField
from labeling.api.tokens import TokenAuthentication
from labeling.models import Annotation, Item
from labeling.permissions import Capability, ProjectCapability
from labeling.selectors.media import item_media_url
from labeling.selectors.queue import item_suggestions, skipped_items_for_user
from labeling.services.annotations import (
    LabelingConflict,
    UndoRefused,
    annotation_create,
    annotation_skip,
    annotation_undo,
)
from labeling.services.queue import item_claim_next, items_peek_next


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _media(slug: str, item, kind: str) -> str:
    return item_media_url(slug=slug, item_id=item.pk, sha256=item.sha256, kind=kind)


_DATETIME_FIELD = serializers.DateTimeField()


def _datetime(value) -> str | None:
    return None if value is None else _DATETIME_FIELD.to_representation(value)


class QueueItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    state = serializers.CharField()
    annotation_count = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    original_name = serializers.CharField(help_text="The file name the image was imported under.")
    thumbnail_url = serializers.SerializerMethodField(help_text="The thumbnail, as the items API names it.")
    thumb_url = serializers.SerializerMethodField(help_text="The same URL as `thumbnail_url` (kept for older clients).")
    original_url = serializers.SerializerMethodField()

    def get_thumbnail_url(self, item) -> str:
        return _media(self.context["slug"], item, "thumb")

    def get_thumb_url(self, item) -> str:
        return _media(self.context["slug"], item, "thumb")

    def get_original_url(self, item) -> str:
        return _media(self.context["slug"], item, "original")


class QueueApi(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    # Anonymous callers get 401 before the membership check (which answers 404 to outsiders).
    permission_classes = [IsAuthenticated, ProjectCapability]
    capability = Capability.LABEL

    def _item(self, item: Item | None) -> dict | None:
        """QueueItemSerializer's output, built directly: this runs on every label (the schema keeps the serializer)."""
        if item is None:
            return None
        slug = self.project.slug
        thumbnail = _media(slug, item, "thumb")
        return {
            "id": item.pk,
            "width": item.width,
            "height": item.height,
            "state": item.state,
            "annotation_count": item.annotation_count,
            "lease_expires_at": _datetime(item.lease_expires_at),
            # The claim reads the whole row (labeling.services.queue: SELECT i.*), so the name costs no query.
            "original_name": item.original_name,
            "thumbnail_url": thumbnail,
            "thumb_url": thumbnail,
            "original_url": _media(slug, item, "original"),
        }

    def _item_stub(self, item_id: int) -> Item:
        """The URL's item as a stub for the annotation services, which lock and read it (404 if not in project)."""
        if not 0 < item_id <= MAX_ID:  # no row has it, and the database would overflow looking
            raise NotFound("No such item in this project.")
        return Item(pk=item_id, project=self.project)


class QueueSuggestionSerializer(serializers.Serializer):
    class_id = serializers.IntegerField()
    name = serializers.CharField(help_text="The class's path, levels joined by ' / '.")
    probability = serializers.FloatField()


class QueuePrefetchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    thumb_url = serializers.CharField()
    original_url = serializers.CharField()


class ItemNextApi(QueueApi):
    """Claim (lease) the next item for the caller; calling again returns the same item while the lease lives."""

    class OutputSerializer(serializers.Serializer):
        item = QueueItemSerializer(allow_null=True)
        suggestions = QueueSuggestionSerializer(many=True, help_text="The active model's top classes for the item.")
        prefetch = QueuePrefetchSerializer(many=True, help_text="The items likely to come next, to load ahead.")

    @extend_schema(
        responses=OutputSerializer,
        parameters=[
            OpenApiParameter(
                "suggest", str, description="0 leaves out the model's suggestions (default 1).", required=False
            ),
            OpenApiParameter(
                "prefetch", int, description="How many next items to list for loading ahead, 0 to 5 (default 0).",
                required=False,
            ),
        ],
    )  # fmt: skip
    def get(self, request, slug: str):
        item = item_claim_next(project=self.project, user=request.user)
        data = {"item": self._item(item), "suggestions": [], "prefetch": []}
        if item is not None and request.query_params.get("suggest", "1") != "0":
            data["suggestions"] = [
                {"class_id": s.class_id, "name": s.path, "probability": round(s.probability, 4)}
                for s in item_suggestions(item=item)
            ]
        try:
            ahead = min(5, max(0, int(request.query_params.get("prefetch", 0))))
        except ValueError:
            ahead = 0
        if item is not None and ahead:
            data["prefetch"] = [
                {"id": p.pk, "thumb_url": _media(slug, p, "thumb"), "original_url": _media(slug, p, "original")}
                for p in items_peek_next(project=self.project, user=request.user, exclude_ids=[item.pk], limit=ahead)
            ]
        return Response(data)


def _shown_at_field() -> serializers.DateTimeField:
    return serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the item's image appeared on screen (ISO 8601 with offset). Up to a minute ahead of the "
        "server's clock is stored as the server's now; later is rejected (400).",
    )


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except ValidationError as exc:
        raise DrfValidationError({"detail": exc.messages}) from exc
    except LabelingConflict as exc:
        raise Conflict(str(exc)) from exc
    except Item.DoesNotExist as exc:
        raise NotFound("No such item in this project.") from exc
    except Annotation.DoesNotExist as exc:
        raise NotFound(str(exc)) from exc


class AnnotationCreateApi(QueueApi):
    """Label an item: single-label projects take exactly one class id."""

    class InputSerializer(serializers.Serializer):
        item_id = IdField()
        class_ids = serializers.ListField(child=IdField(), allow_empty=False, max_length=1000)
        seconds_spent = serializers.FloatField(required=False, default=0.0, min_value=0)
        shown_at = _shown_at_field()

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item_id = serializers.IntegerField()
        class_ids = serializers.ListField(child=serializers.IntegerField())
        item_state = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = self._item_stub(data.validated_data["item_id"])
        annotation = _call(
            annotation_create,
            item=item,
            user=request.user,
            class_ids=data.validated_data["class_ids"],
            seconds_spent=data.validated_data["seconds_spent"],
            shown_at=data.validated_data["shown_at"],
        )
        out = {
            "id": annotation.pk,
            "item_id": item.pk,
            "class_ids": sorted(set(data.validated_data["class_ids"])),
            "item_state": item.state,
        }
        return Response(out, status=status.HTTP_201_CREATED)


class ItemSkipApi(QueueApi):
    """Skip an item: it stays in the queue for others and comes back to the caller after the rest (see skips/)."""

    class InputSerializer(serializers.Serializer):
        seconds_spent = serializers.FloatField(required=False, default=0.0, min_value=0)
        shown_at = _shown_at_field()

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        item_id = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, slug: str, item_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = self._item_stub(item_id)
        annotation = _call(
            annotation_skip,
            item=item,
            user=request.user,
            seconds_spent=data.validated_data["seconds_spent"],
            shown_at=data.validated_data["shown_at"],
        )
        return Response({"id": annotation.pk, "item_id": item.pk}, status=status.HTTP_201_CREATED)


class UndoApi(QueueApi):
    """Withdraw the caller's last label or skip in this project (within the grace period); leases the item back.

    With `annotation_id` (the `id` a label or skip returned) only that annotation is withdrawn, and only while it is
    the caller's last: a retry of an undo whose answer was lost gets 409 instead of withdrawing the label before.
    """

    class InputSerializer(serializers.Serializer):
        annotation_id = IdField(
            required=False,
            allow_null=True,
            default=None,
            help_text="The annotation to withdraw; 409 (nothing changed) unless it is the caller's last undoable one; "
            "404 when it is no label or skip of the caller's in this project.",
        )

    class OutputSerializer(serializers.Serializer):
        undo_id = serializers.IntegerField()
        undone_annotation_id = serializers.IntegerField()
        item = QueueItemSerializer()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        undo = _call(
            _annotation_undo,
            user=request.user,
            project=self.project,
            annotation_id=data.validated_data["annotation_id"],
        )
        return Response(
            {"undo_id": undo.pk, "undone_annotation_id": undo.undoes_id, "item": self._item(undo.undoes.item)}
        )


def _annotation_undo(**kwargs):
    """annotation_undo, its refusal of an annotation that is not the latest in the words for a script (no page)."""
    try:
        return annotation_undo(**kwargs)
    except UndoRefused as exc:
        raise LabelingConflict(exc.api_message) from exc


class SkipListApi(QueueApi):
    """The caller's skipped items that the queue will serve them again once the rest is done, oldest skip first."""

    MAX_LIMIT = 500

    class OutputSerializer(serializers.Serializer):
        class SkipSerializer(serializers.Serializer):
            item_id = serializers.IntegerField()
            original_name = serializers.CharField()
            skipped_at = serializers.DateTimeField()
            thumb_url = serializers.CharField()
            original_url = serializers.CharField()

        results = SkipSerializer(many=True)

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="At most this many (1-500, default 100).")],
        responses=OutputSerializer,
    )
    def get(self, request, slug: str):
        try:
            limit = min(self.MAX_LIMIT, max(1, int(request.query_params.get("limit", 100))))
        except ValueError as exc:
            raise DrfValidationError({"limit": ["A whole number is required."]}) from exc
        skips = skipped_items_for_user(project=self.project, user=request.user, limit=limit)
        results = [
            {
                "item_id": s.item.pk,
                "original_name": s.item.original_name,
                "skipped_at": _datetime(s.skipped_at),
                "thumb_url": _media(slug, s.item, "thumb"),
                "original_url": _media(slug, s.item, "original"),
            }
            for s in skips
        ]
        return Response({"results": results})


urlpatterns = [
    path("projects/<slug:slug>/next/", ItemNextApi.as_view(), name="api-queue-next"),
    path("projects/<slug:slug>/annotations/", AnnotationCreateApi.as_view(), name="api-annotation-create"),
    path("projects/<slug:slug>/items/<int:item_id>/skip/", ItemSkipApi.as_view(), name="api-item-skip"),
    path("projects/<slug:slug>/undo/", UndoApi.as_view(), name="api-undo"),
    path("projects/<slug:slug>/skips/", SkipListApi.as_view(), name="api-skip-list"),
]

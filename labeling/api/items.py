"""API: a project's items, filterable by state, split, class, priority, gold flag and the active model's prediction.
An annotator gets what labeling needs (no labels, state or gold flag); resolved labels need Capability.VIEW_METRICS.

`label_class` stands for the class and every class under it, as a class does in a dataset export's filter.
Media URLs (`original_url`, `thumbnail_url`) are the same site-relative paths as the queue's `thumb_url` and
`original_url` and an export's `media_url` (labeling.selectors.media.item_media_url)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Prefetch, Q
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import (
    FiniteFloatField,
    IdCursorPagination,
    IdField,
    ProjectView,
    RoleFieldsSerializer,
    object_or_404,
    sees_details,
)
from labeling.models import (
    Item,
    ItemState,
    LabelClass,
    Project,
    ResolvedLabel,
    Split,
)
from labeling.selectors.classes import class_tree
from labeling.selectors.exports import class_ids_with_descendants
from labeling.selectors.media import item_media_url
from labeling.selectors.training_seam import active_predictions_of_outer_item


class ItemOutputSerializer(RoleFieldsSerializer):
    detail_fields = ("state", "priority", "annotation_count", "is_gold", "labels", "label_source")
    labels = serializers.SerializerMethodField(
        help_text="Class ids of the resolved label (empty when unlabeled). This and state, priority, annotation_count, "
        "is_gold and label_source are left out for annotators."
    )
    label_source = serializers.SerializerMethodField()
    original_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "original_name", "sha256", "phash", "width", "height", "format", "split", "state",
                  "priority", "annotation_count", "is_gold", "created_at", "labels", "label_source", "original_url",
                  "thumbnail_url"]  # fmt: skip

    def _resolved(self, obj):
        try:
            return obj.resolved
        except Item.resolved.RelatedObjectDoesNotExist:
            return None

    def get_labels(self, obj) -> list[int]:
        resolved = self._resolved(obj)
        return sorted(c.pk for c in resolved.classes.all()) if resolved else []

    def get_label_source(self, obj) -> str:
        resolved = self._resolved(obj)
        return resolved.source if resolved else ""

    def _url(self, obj, kind: str) -> str:
        return item_media_url(slug=self.context["slug"], item_id=obj.pk, sha256=obj.sha256, kind=kind)

    def get_original_url(self, obj) -> str:
        return self._url(obj, "original")

    def get_thumbnail_url(self, obj) -> str:
        return self._url(obj, "thumb")


class ItemFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ItemState.choices, required=False)
    split = serializers.ChoiceField(choices=Split.choices, required=False)
    label_class = IdField(
        required=False, help_text="Items whose resolved label includes this class id or a class under it."
    )
    priority_min = FiniteFloatField(required=False)
    priority_max = FiniteFloatField(required=False)
    has_prediction = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Has a prediction from the active model."
    )
    confidence_min = FiniteFloatField(required=False, help_text="Active model's confidence, inclusive.")
    confidence_max = FiniteFloatField(required=False)
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)


def items_filter(*, project: Project, filters: dict):
    """Items of a project narrowed by the API's filters (indexed columns; predictions by EXISTS)."""
    qs = Item.objects.filter(project=project)
    if filters.get("state"):
        qs = qs.filter(state=filters["state"])
    if filters.get("split"):
        qs = qs.filter(split=filters["split"])
    if filters.get("label_class"):
        # One read of the tree, then one subquery: a class stands for its subtree, without a query per class
        # and without repeating an item labeled with two classes of it.
        wanted = class_ids_with_descendants([filters["label_class"]], class_tree(project=project))
        labeled = ResolvedLabel.objects.filter(project=project, classes__in=wanted).values("item_id")
        qs = qs.filter(pk__in=labeled)
    if filters.get("priority_min") is not None:
        qs = qs.filter(priority__gte=filters["priority_min"])
    if filters.get("priority_max") is not None:
        qs = qs.filter(priority__lte=filters["priority_max"])
    if filters.get("is_gold") is not None:
        qs = qs.filter(is_gold=filters["is_gold"])
    confidence = Q()
    if filters.get("confidence_min") is not None:
        confidence &= Q(confidence__gte=filters["confidence_min"])
    if filters.get("confidence_max") is not None:
        confidence &= Q(confidence__lte=filters["confidence_max"])
    predictions = active_predictions_of_outer_item()
    if predictions is None:  # no training app: no item has a prediction
        if confidence or filters.get("has_prediction"):
            qs = qs.none()
        return qs
    if confidence:
        qs = qs.filter(Exists(predictions.filter(confidence)))
    if filters.get("has_prediction") is not None:
        exists = Exists(predictions)
        qs = qs.filter(exists if filters["has_prediction"] else ~exists)
    return qs


class ItemListApi(ProjectView, generics.ListAPIView):
    """Items with filters; keyset-paginated by id (follow `next`). Annotators may filter by split only (others: 403)."""

    serializer_class = ItemOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        filters = ItemFilterSerializer(data=self.request.query_params)
        if not sees_details(self.role):
            refused = sorted(set(filters.fields) & set(self.request.query_params) - {"split"})
            if refused:
                raise PermissionDenied(f"Your role may not filter items by {', '.join(refused)}.")
        filters.is_valid(raise_exception=True)
        return items_filter(project=self.project, filters=filters.validated_data).prefetch_related(
            Prefetch("resolved__classes", queryset=LabelClass.objects.only("id"))
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "slug": self.project.slug, "role": self.role}

    @extend_schema(parameters=[ItemFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ItemDetailApi(ProjectView, APIView):
    """One item: file metadata, split, state, queue priority, resolved label and media URLs."""

    @extend_schema(responses={200: ItemOutputSerializer})
    def get(self, request, slug: str, item_id: int):
        item = object_or_404(Item.objects.select_related("resolved"), project=self.project, pk=item_id)
        context = {"request": request, "slug": slug, "role": self.role}
        return Response(ItemOutputSerializer(item, context=context).data)

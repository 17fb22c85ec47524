"""The label-error search over the API: GET the latest search with its open suspects and the cross-validated estimate,
POST to start one. The response serializers below document the answer in the OpenAPI schema (the view builds it in
training.selectors.label_errors); tests/training/test_label_errors_api.py holds real answers to them."""

from __future__ import annotations

import binascii
import math
from base64 import urlsafe_b64decode, urlsafe_b64encode

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import JOB_START_RESPONSES, IdCursorPagination, ProjectView, job_started_response
from labeling.constants import MAX_ID
from labeling.permissions import Capability, may_search_label_errors
from training.models import LabelErrorStatus
from training.selectors.label_errors import SuspectPosition, label_errors_report
from training.services.quality import label_errors_job_enqueue


class EstimateFigureSerializer(serializers.Serializer):
    value = serializers.FloatField()
    n = serializers.IntegerField(help_text="Labeled items the figure rests on.")
    low = serializers.FloatField(allow_null=True, help_text="Lower end of the 95 % interval.")
    high = serializers.FloatField(allow_null=True, help_text="Upper end of the 95 % interval.")
    method = serializers.CharField(allow_null=True, help_text="wilson or bootstrap.")


class DecisionSerializer(serializers.Serializer):
    class_id = serializers.IntegerField()
    given = serializers.BooleanField(help_text="True: a class given that the search finds absent; false: one missing "
                                     "that it finds present.")  # fmt: skip
    p_present = serializers.FloatField(help_text="The out-of-sample probability that the class is present.")
    neighbours_present = serializers.FloatField(
        allow_null=True, help_text="Share of the 10 most similar labeled images carrying the class."
    )


class SuspectSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    name = serializers.CharField(help_text="The image's original file name.")
    score = serializers.FloatField(help_text="How suspect: higher first.")
    given_class = serializers.IntegerField(allow_null=True, help_text="Class id (the class list gives its path).")
    suggested_class = serializers.IntegerField(allow_null=True, help_text="The class the cross-validated model gives.")
    p_suggested = serializers.FloatField(allow_null=True)
    p_given = serializers.FloatField(allow_null=True)
    neighbours_suggested = serializers.FloatField(allow_null=True)
    neighbours_given = serializers.FloatField(allow_null=True)
    decisions = DecisionSerializer(many=True, allow_null=True, help_text="Multi-label only; null otherwise.")


class SearchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField(
        allow_null=True, help_text="The model version the search ran for (the newest when it started); null before any."
    )
    status = serializers.ChoiceField(choices=LabelErrorStatus.choices)
    reason = serializers.CharField(allow_blank=True)
    labels = serializers.IntegerField(help_text="Labels judged.")
    min_per_class = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True, help_text="Out-of-sample agreement with the given labels.")
    estimated_share = serializers.FloatField(allow_null=True, help_text="Estimated share of wrong labels.")
    share_low = serializers.FloatField(allow_null=True)
    share_high = serializers.FloatField(allow_null=True)
    not_checked = serializers.ListField(
        child=serializers.ListField(),
        help_text='[stored class path ("a/b/c"), label count] of the classes below min_per_class.',
    )
    classes_judged = serializers.IntegerField(help_text="Multi-label: classes whose decisions were judged.")
    weak_classes = serializers.ListField(
        child=serializers.ListField(),
        help_text='[stored class path ("a/b/c"), balanced accuracy, agreement, …] of classes too weak to judge.',
    )
    seconds = serializers.FloatField()
    created_at = serializers.DateTimeField(help_text="When the search finished.")
    suspects_search = serializers.IntegerField(
        help_text="The search the suspects are from: the newest started, which wrote the open review tasks (another "
        "than `id` after going back to an older version)."
    )
    suspects_open = serializers.IntegerField(help_text="Open suspects in all, over every page.")
    suspects = SuspectSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next page of suspects; null on the last.")


class OpenImagesSerializer(serializers.Serializer):
    accuracy = EstimateFigureSerializer()
    scored = serializers.IntegerField(allow_null=True)
    open = serializers.IntegerField(allow_null=True)


class CrossValidatedSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    multi_label = serializers.BooleanField()
    accuracy = EstimateFigureSerializer(help_text="Subset accuracy in a multi-label project.")
    macro_f1 = EstimateFigureSerializer()
    hamming_accuracy = EstimateFigureSerializer(required=False, help_text="Multi-label only.")
    micro_f1 = EstimateFigureSerializer(required=False, help_text="Multi-label only.")
    no_support = serializers.ListField(
        child=serializers.CharField(), help_text='Classes with no labeled item, by stored path ("a/b/c").'
    )
    folds = serializers.IntegerField(allow_null=True)
    pool = serializers.IntegerField(allow_null=True)
    open_images = OpenImagesSerializer(allow_null=True)
    searched_at = serializers.DateTimeField(allow_null=True)


class LabelErrorsReportSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        allow_null=True, help_text="The model version the figures are for: the active one (null without one)."
    )
    search = SearchSerializer(allow_null=True)
    cross_validated = CrossValidatedSerializer(allow_null=True)
    note = serializers.CharField(
        allow_blank=True, help_text="Why the active version's search or estimate is missing (empty when it is not)."
    )


class LabelErrorsApi(ProjectView, APIView):
    """The active model version's latest label-error search and its cross-validated estimate, as the model page shows
    them; `version` is that version's number (null before any), "latest" the newest search started while it was the
    newest version (two searches can run at once, and the older can end last). When the active version has no
    finished search yet (it was just trained, or a search never ran in its time), `note` says so, `search` is the
    newest one with the version it ran for in `search.version`, and `cross_validated` is null. `search`: its status
    (ok, too_few, weak, skipped) and reason, the labels it judged, the model's out-of-sample agreement, the estimated
    share of wrong labels with its 95 % interval, and the suspects nobody has settled yet, most suspect first: the
    item, its given class, the class the cross-validated model gives it, the model's probabilities for both and the
    share of the item's 10 most similar labeled images carrying each. The suspects come a page at a time (`page_size`,
    default 100); `suspects_open` counts them all and `next` is the next page's address (null on the last). The open
    suspects are the review tasks the newest search started wrote, described by that search (`suspects_search`).
    `cross_validated`: accuracy and macro-F1 over every labeled item and the accuracy estimated on the open images,
    each with n and a 95 % interval (null until a search computed one; it is computed while the holdout is small). In a
    multi-label project (`multi_label` true) `accuracy` is the subset accuracy, beside `hamming_accuracy` and
    `micro_f1`, and there is no open-image estimate. A multi-label search judges class decisions: `classes_judged`
    and `weak_classes` (the classes whose model was too weak, with its balanced accuracy and agreement), the estimated
    share is of the decisions judged (labels x classes_judged), and each suspect's `decisions` lists the classes the
    search contradicts (`given` true: a class given that it finds absent; false: one missing that it finds present),
    with the probability the class is present and the share of similar labeled images carrying it. Suspects and
    decisions name classes by id; every class name in the answer is a stored path ("a/b/c"), as the class list's
    `stored_path`.
    POST starts a search as a job (reviewers, managers and ML engineers); one already queued or running is returned
    instead."""

    capability = Capability.VIEW_METRICS

    @extend_schema(
        parameters=[
            OpenApiParameter("page_size", int, description="suspects per page (default 100, at most 1000)"),
            OpenApiParameter("cursor", str, description="the position `search.next` carries; omit for page one"),
        ],
        responses={200: LabelErrorsReportSerializer},
    )
    def get(self, request, slug: str):
        limit = IdCursorPagination().get_page_size(request)  # the other lists' page_size rule
        after = _suspect_position(request.query_params.get("cursor"))
        report = label_errors_report(project=self.project, limit=limit, after=after)
        search = report["search"]
        if search is not None:
            more = search.pop("more_after")
            search["next"] = None
            if more is not None:
                query = request.query_params.copy()
                query["cursor"] = _cursor(more)
                search["next"] = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(report)

    @extend_schema(request=None, responses={**JOB_START_RESPONSES, 403: OpenApiResponse()})
    def post(self, request, slug: str):
        if not may_search_label_errors(self.role):
            raise PermissionDenied("Your role in this project does not allow this.")
        return job_started_response(label_errors_job_enqueue(project=self.project, created_by=request.user), request)


def _cursor(position: SuspectPosition) -> str:
    return urlsafe_b64encode(f"{position.score!r}:{position.item_id}".encode()).decode().rstrip("=")


def _suspect_position(raw: str | None) -> SuspectPosition | None:
    """The cursor a `next` link carries; anything else (edited, truncated, from another list) is a 404 like DRF's
    own invalid cursors, not a 500."""
    if raw is None:
        return None
    try:
        score, item_id = urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii").split(":")
        position = SuspectPosition(score=float(score), item_id=int(item_id))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise NotFound("Invalid cursor") from None
    if not (math.isfinite(position.score) and 0 < position.item_id <= MAX_ID):
        raise NotFound("Invalid cursor")
    return position

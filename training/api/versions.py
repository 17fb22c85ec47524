"""Model version writes through the API: make a version active (the model page's "make active")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import JobStartedSerializer, ProjectView, job_started_response, object_or_404
from labeling.permissions import Capability
from training.models import ModelVersion
from training.services.activation import model_version_activate_rescored


class AlreadyActiveSerializer(serializers.Serializer):
    detail = serializers.CharField()
    number = serializers.IntegerField()
    active = serializers.BooleanField()


class ModelVersionActivateApi(ProjectView, APIView):
    """Make a model version the active one (suggestions, exports and serving use it) and re-score the labeling
    queue with it, as "make active" on the model page does: 202 with the Scoring job it starts (poll its `url`;
    `status` failed with a message when the task queue is down: the version is active all the same, and the queue
    keeps its old order until the pool is re-scored). The version already active: 200, nothing changed, no job.
    The version's metrics then keep a round's "not made active" reason as `held_back_by_round`, and
    `made_active_by_hand` says who made it active and when."""

    capability = Capability.TRAIN

    @extend_schema(
        request=None,
        responses={
            202: JobStartedSerializer,
            200: OpenApiResponse(AlreadyActiveSerializer, description="Already the active version: nothing changed."),
            404: OpenApiResponse(description="No such model version in this project."),
        },
    )
    def post(self, request, slug: str, number: int):
        version = object_or_404(ModelVersion.objects.defer("metrics"), project=self.project, number=number)
        if version.active:
            answer = {"detail": f"v{number} is already the active version. Nothing changed.", "number": number,
                      "active": True}  # fmt: skip
            return Response(answer, status=status.HTTP_200_OK)
        job = model_version_activate_rescored(version=version, created_by=request.user)
        return job_started_response(job, request)

"""REST API under /api/: config wires the API modules of both apps (labeling never imports training)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from labeling.api import queue, resources
from training import api as training_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    *queue.urlpatterns,
    *resources.urlpatterns,
    *training_api.urlpatterns,
]

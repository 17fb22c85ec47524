"""Placeholder module owned by the training work; replaced by the real views."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from labeling.permissions import Capability, project_view


@project_view(Capability.VIEW_METRICS)
def model_page(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


urlpatterns = [
    path("p/<slug:slug>/model/", model_page, name="model"),
]

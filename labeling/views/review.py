"""Placeholder module owned by the review work; replaced by the real views."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from labeling.permissions import Capability, project_view


@project_view(Capability.REVIEW)
def review(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


@project_view(Capability.VIEW_METRICS)
def quality(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


urlpatterns = [
    path("p/<slug:slug>/review/", review, name="review"),
    path("p/<slug:slug>/quality/", quality, name="quality"),
]

"""Placeholder module owned by the labeling work; replaced by the real views."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from labeling.permissions import Capability, project_view


@project_view(Capability.LABEL)
def label(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


@project_view(Capability.LABEL)
def grid(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


@project_view(Capability.MANAGE)
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


urlpatterns = [
    path("p/<slug:slug>/label/", label, name="label"),
    path("p/<slug:slug>/grid/", grid, name="grid"),
    path("p/<slug:slug>/dashboard/", dashboard, name="dashboard"),
]

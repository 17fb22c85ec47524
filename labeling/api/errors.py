"""The site's 404 answer (config.urls.handler404): under /api/ the JSON body DRF gives its own 404s, so that a
client reading JSON gets JSON also for a path no API view matches; elsewhere the HTML page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.exceptions import NotFound

API_PREFIX = "/api/"


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if f"{request.path_info.rstrip('/')}/".startswith(API_PREFIX):
        return JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
    return page_not_found(request, exception)

"""Error answers of the API that neither DRF nor Django gives as JSON on their own.

- The site's 404 (config.urls.handler404): under /api/ the JSON body DRF gives its own 404s, so that a client
  reading JSON gets JSON also for a path no API view matches; elsewhere the HTML page.
- The API's exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]): DRF's, plus JSON answers for the bodies that
  Python's json and Django refuse with exceptions DRF does not know, which used to reach the client as Django's
  HTML error pages:
  - JSON nested deeper than Python's json can follow raises RecursionError, not the ValueError that DRF's
    JSONParser turns into a parse error: 500. Now the 400 of malformed JSON, whichever view's JSON parser met it
    (the token endpoint keeps ObtainAuthToken's own parser list, so a default parser class would not cover it).
    A RecursionError raised anywhere else is still a bug and still a 500.
  - A body over DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig): 413 naming the limit; too many form fields or
    files (TooManyFieldsSent, TooManyFilesSent): 400 naming that limit. Django logs each answer, as it logs
    every 4xx (django.request).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.views import exception_handler

API_PREFIX = "/api/"
NESTED_TOO_DEEP = "JSON parse error - arrays or objects are nested too deeply."


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if f"{request.path_info.rstrip('/')}/".startswith(API_PREFIX):
        return JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
    return page_not_found(request, exception)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(
            f"The request body is over the limit of {limit:,} bytes (files uploaded as multipart not counted). "
            "Send less in one request."
        )


def _raised_by_a_json_parser(exc: BaseException) -> bool:
    """Whether a JSON parser's parse() is on the way from where `exc` was caught to where it was raised."""
    tb = exc.__traceback__
    while tb is not None:
        if isinstance(tb.tb_frame.f_locals.get("self"), JSONParser):
            return True
        tb = tb.tb_next
    return False


def api_exception_handler(exc: Exception, context: dict):
    if isinstance(exc, RecursionError) and _raised_by_a_json_parser(exc):
        exc = ParseError(NESTED_TOO_DEEP)
    elif isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        exc = ParseError(f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} form fields or query parameters.")
    elif isinstance(exc, TooManyFilesSent):
        exc = ParseError(f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files in one request.")
    return exception_handler(exc, context)

"""Permission-checked media: originals and thumbnails are never served from a public folder.

With LABELLOOP_MEDIA_ACCEL_PREFIX set (e.g. /protected/), the response is an empty
X-Accel-Redirect so nginx streams the file; otherwise Django streams it itself.
"""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.views.decorators.http import require_GET

from labeling.models import Item
from labeling.permissions import Capability, project_view

SMALL_FILE_BYTES = 1024 * 1024


@require_GET
@project_view(Capability.VIEW)
def item_media(request: HttpRequest, slug: str, item_id: int, kind: str) -> HttpResponse:
    item = get_object_or_404(Item.objects.only("file", "thumbnail", "project_id"), project=request.project, pk=item_id)
    field = item.thumbnail if kind == "thumb" else item.file
    if kind not in ("thumb", "original") or not field:
        raise Http404
    content_type = mimetypes.guess_type(field.name)[0] or "application/octet-stream"
    if settings.LABELLOOP_MEDIA_ACCEL_PREFIX:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.LABELLOOP_MEDIA_ACCEL_PREFIX.rstrip("/") + "/" + field.name
    else:
        try:
            handle = field.storage.open(field.name, "rb")
        except FileNotFoundError as exc:
            raise Http404 from exc
        # Thumbnails and most originals are small: one read and a plain response cost far less than
        # FileResponse's streaming machinery; large files still stream.
        head = handle.read(SMALL_FILE_BYTES + 1)
        if len(head) <= SMALL_FILE_BYTES:
            handle.close()
            response = HttpResponse(head, content_type=content_type)
        else:
            handle.seek(0)
            response = FileResponse(handle, content_type=content_type)
    # Content never changes for a given item (the name is its sha256), but it is private.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns = [
    path("p/<slug:slug>/media/<int:item_id>/<str:kind>/", item_media, name="item_media"),
]

"""Permission-checked media: originals and thumbnails are never served from a public folder.

With LABELLOOP_MEDIA_ACCEL_PREFIX set (e.g. /protected/), the response is an empty
X-Accel-Redirect so nginx streams the file; otherwise Django streams it itself.

Pages link images by `item_media_url`, which names the content (`?v=` the start of the file's sha256), so the
browser may keep them for a day without asking again. An item id alone does not name content for long: a
database created afresh (or flushed) gives new images the ids of old ones, under the same project slugs, and a
browser that had cached the old image showed it in place of the new one, to be labeled. A URL without `v` (an old
link, a script) is answered with its ETag and revalidated each time; one whose `v` names other bytes is a 404.

The API hands out these URLs (`thumb_url`, `original_url`, an export's `media_url`), so a script signed in with
`Authorization: Token <key>` fetches them with the same header; a wrong key is a 401, never the sign-in page.
"""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.urls import path
from django.views.decorators.http import require_GET

from labeling.models import Item
from labeling.permissions import Capability, project_view
from labeling.selectors.media import VERSION_CHARS

SMALL_FILE_BYTES = 1024 * 1024


@require_GET
@project_view(Capability.VIEW, api_token=True)
def item_media(request: HttpRequest, slug: str, item_id: int, kind: str) -> HttpResponse:
    item = get_object_or_404(
        Item.objects.only("file", "thumbnail", "project_id", "sha256"), project=request.project, pk=item_id
    )
    field = item.thumbnail if kind == "thumb" else item.file
    if kind not in ("thumb", "original") or not field:
        raise Http404
    version = request.GET.get("v", "")
    if version and (len(version) != VERSION_CHARS or not item.sha256.startswith(version)):
        raise Http404("This link names another image.")
    etag = f'"{item.sha256[:VERSION_CHARS]}-{kind}"'
    if not version and etag in request.headers.get("If-None-Match", ""):
        return _cached(HttpResponseNotModified(), etag, immutable=False)
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
    response["X-Content-Type-Options"] = "nosniff"
    return _cached(response, etag, immutable=bool(version))


def _cached(response: HttpResponse, etag: str, *, immutable: bool) -> HttpResponse:
    """Private either way. A URL that names the content never changes: a day without asking. One that does not
    (an item id alone) is asked about each time, and answered 304 while the ETag still matches."""
    response["Cache-Control"] = "private, max-age=86400, immutable" if immutable else "private, no-cache"
    response["ETag"] = etag
    return response


urlpatterns = [
    path("p/<slug:slug>/media/<int:item_id>/<str:kind>/", item_media, name="item_media"),
]

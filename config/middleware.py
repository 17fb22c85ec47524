"""Pages a signed-in user sees are not kept by the browser.

Chromium and Firefox show a page reached with Back from their HTTP cache without asking the server, unless it says
`no-store`. The labeling page then came back with the image its HTML was first rendered with: one the annotator had
already labeled, and a key typed at it got "This item needs no more annotations" instead of labeling what is next.
Every HTML response to a signed-in user that sets no caching of its own is therefore marked `no-store, private`
(django.utils.cache.add_never_cache_headers): queue, counts, progress and review cards are always current. Media and
static files set their own headers and keep them.
"""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers


class NoStoreSignedInPagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            not response.has_header("Cache-Control")
            and response.get("Content-Type", "").startswith("text/html")
            and user is not None
            and user.is_authenticated
        ):
            add_never_cache_headers(response)
        return response

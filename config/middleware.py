"""Two answers about signing in that pages need from every view.

Pages a signed-in user sees are not kept by the browser.

Chromium and Firefox show a page reached with Back from their HTTP cache without asking the server, unless it says
`no-store`. The labeling page then came back with the image its HTML was first rendered with: one the annotator had
already labeled, and a key typed at it got "This item needs no more annotations" instead of labeling what is next.
Every HTML response to a signed-in user that sets no caching of its own is therefore marked `no-store, private`
(django.utils.cache.add_never_cache_headers): queue, counts, progress and review cards are always current. Media and
static files set their own headers and keep them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import resolve_url
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


class HtmxSignInRedirectMiddleware:
    """A page's htmx request whose session has ended (signed out in another tab, expired) is sent to the sign-in page
    as a whole page, and back to the page it came from after signing in.

    Without this the request followed the view's redirect to the sign-in page and htmx swapped that whole page into
    the labeling card: a sign-in form inside the page, under a top bar that still named the user. The redirect is
    replaced by an `HX-Redirect` to the sign-in page with `next` the page the user is on (django-htmx's
    `current_url_abs_path`: this site's only); htmx then loads it as a full page. Listed after django-htmx's
    middleware, which sets `request.htmx`. Nothing was changed by the request: the view never ran.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.htmx or response.status_code not in (301, 302):
            return response
        login = resolve_url(settings.LOGIN_URL)
        if urlsplit(response["Location"]).path != login:
            return response
        answer = HttpResponse(status=204)
        answer["HX-Redirect"] = redirect_to_login(request.htmx.current_url_abs_path or "/", login)["Location"]
        add_never_cache_headers(answer)
        return answer

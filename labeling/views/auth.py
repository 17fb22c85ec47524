"""Sign-in pages (the site's and the admin's) with a limit on failed attempts per username and client address.

After LABELLOOP_LOGIN_FAILURES failures for one (username, address) within LABELLOOP_LOGIN_WINDOW_SECONDS of the
first, a sign-in is answered 429 without checking the password, until the window has passed. A successful sign-in
clears the count. Counts live in Django's cache: per process unless CACHES is shared (Redis). The address is the
connection's, or with LABELLOOP_BEHIND_PROXY the one the proxy appended to X-Forwarded-For (as DRF's throttles read
it). Someone who knows a username can hold its sign-in shut for a window from their address only.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

REFUSED = "Too many failed sign-ins for this username from your address: try again in up to {minutes} minutes."


def _failures_key(request: HttpRequest) -> str:
    username = request.POST.get("username", "")[:300].casefold()
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.LABELLOOP_BEHIND_PROXY and forwarded:
        address = forwarded.split(",")[-1].strip()  # appended by our proxy; what came before is the client's claim
    digest = hashlib.sha256(f"{username}\0{address}".encode()).hexdigest()
    return f"labelloop:login-failures:{digest}"


def _failure_record(key: str) -> None:
    window = settings.LABELLOOP_LOGIN_WINDOW_SECONDS
    # add() starts the window at the first failure; incr() keeps that expiry.
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # it expired between add() and incr()
            cache.add(key, 1, timeout=window)


def _refused(request: HttpRequest) -> HttpResponse:
    minutes = max(1, round(settings.LABELLOOP_LOGIN_WINDOW_SECONDS / 60))
    context = {"form": AuthenticationForm(request), "refused": REFUSED.format(minutes=minutes)}
    response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(settings.LABELLOOP_LOGIN_WINDOW_SECONDS)
    return response


def login_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a Django login view: a POST answered with the form again (200) is a failure, a redirect a success."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        key = _failures_key(request)
        if cache.get(key, 0) >= settings.LABELLOOP_LOGIN_FAILURES:
            return _refused(request)
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            _failure_record(key)
        elif 300 <= response.status_code < 400:
            cache.delete(key)
        return response

    return wrapper


login = login_limited(auth_views.LoginView.as_view())
admin_login = login_limited(admin.site.login)


STALE_PAGE = (
    "Not saved: this page was out of date (you signed in again in another tab). It has been reloaded; do it again."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A request sent with a page's security token that no longer holds, mostly because the user signed in again in
    another tab (which replaces the token). Retrying from the same page fails the same way, so an htmx request (a
    labeling key, a verdict) reloads the page, which brings a fresh token and the same card, with a message that the
    last action was not saved; a plain form gets Django's answer, our templates/403_csrf.html, which says to reload.
    Nothing was changed: the view never ran.
    """
    from django.contrib import messages
    from django.views.csrf import csrf_failure as plain_csrf_failure

    if request.htmx:
        if request.user.is_authenticated:
            messages.warning(request, STALE_PAGE)
        response = HttpResponse(STALE_PAGE, status=403, content_type="text/plain; charset=utf-8")
        response["HX-Refresh"] = "true"
        return response
    return plain_csrf_failure(request, reason)

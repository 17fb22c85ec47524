"""Sign-in pages (the site's and the admin's) with the limit on failed attempts per username and client address that
the API's token exchange shares (labeling.services.sign_in): past it, a sign-in is answered 429 without checking the
password, until the window has passed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from labeling.services import sign_in


def _refused(request: HttpRequest) -> HttpResponse:
    context = {"form": AuthenticationForm(request), "refused": sign_in.refused_message()}
    response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(settings.LABELLOOP_LOGIN_WINDOW_SECONDS)
    return response


def login_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a Django login view: a POST answered with the form again (200) is a failure, a redirect a success."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        key = sign_in.failures_key(request, request.POST.get("username", ""))
        if sign_in.locked_out(key):
            return _refused(request)
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            sign_in.failure_record(key)
        elif 300 <= response.status_code < 400:
            sign_in.failures_clear(key)
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

"""The limit on failed password checks per username and client address, shared by every way in: the site's and the
admin's sign-in pages (labeling.views.auth) and the API's password-for-token exchange (labeling.api.auth).

After LABELLOOP_LOGIN_FAILURES failures for one (username, address) within LABELLOOP_LOGIN_WINDOW_SECONDS of the
first, a password is not checked at all, until the window has passed; a success clears the count. Counts live in
Django's cache: per process unless CACHES is shared (Redis). The address is the connection's, or with
LABELLOOP_BEHIND_PROXY the one the proxy appended to X-Forwarded-For (as DRF's throttles read it). Someone who knows a
username can hold its sign-in shut for a window from their address only.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

REFUSED = "Too many failed sign-ins for this username from your address: try again in up to {minutes} minutes."


def failures_key(request: HttpRequest, username: str) -> str:
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.LABELLOOP_BEHIND_PROXY and forwarded:
        address = forwarded.split(",")[-1].strip()  # appended by our proxy; what came before is the client's claim
    digest = hashlib.sha256(f"{str(username)[:300].casefold()}\0{address}".encode()).hexdigest()
    return f"labelloop:login-failures:{digest}"


def locked_out(key: str) -> bool:
    return cache.get(key, 0) >= settings.LABELLOOP_LOGIN_FAILURES


def failure_record(key: str) -> None:
    window = settings.LABELLOOP_LOGIN_WINDOW_SECONDS
    # add() starts the window at the first failure; incr() keeps that expiry.
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # it expired between add() and incr()
            cache.add(key, 1, timeout=window)


def failures_clear(key: str) -> None:
    cache.delete(key)


def refused_message() -> str:
    return REFUSED.format(minutes=max(1, round(settings.LABELLOOP_LOGIN_WINDOW_SECONDS / 60)))

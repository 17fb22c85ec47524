"""Where an alert webhook may point. A manager types the URL and a worker POSTs to it, so unless
LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES is on, a host that resolves to anything but a public address (private, loopback,
link-local such as the cloud metadata service, shared, reserved, multicast) is refused: when the URL is saved and
again just before each POST, since a name can resolve elsewhere later. The POST follows no redirect, so a public
receiver cannot send it on inward."""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

SCHEME_REFUSED = "The webhook URL must start with http:// or https://."


def webhook_address_refusal(url: str) -> str:
    """Why the webhook may not POST to `url` ("" when it may). Resolves the host unless private addresses are
    allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return SCHEME_REFUSED
    host = parts.hostname
    if not host:
        return "The webhook URL has no host name."
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The webhook URL's port must be a number from 1 to 65535."
    if settings.LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES:
        return ""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return f"The webhook URL's host {host} could not be resolved."
    for text in sorted(found):
        address = ipaddress.ip_address(text.split("%")[0])
        if not address.is_global or address.is_multicast or address.is_unspecified:
            return (
                f"The webhook URL's host {host} is not a public address ({address}). Webhooks go to public "
                "addresses only, unless an administrator sets LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES=on."
            )
    return ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer (logged with its status), never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


webhook_opener = urllib.request.build_opener(_NoRedirect())

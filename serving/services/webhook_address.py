"""Where an alert webhook may point. A manager types the URL and a worker POSTs to it, so unless
LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES is on, a host that resolves to anything but a public address (private, loopback,
link-local such as the cloud metadata service, shared, reserved, multicast) is refused: when the URL is saved, again
just before each POST, and once more as the POST connects: the connection goes to the very address that was checked
(a name that answers a public address to the check and an inward one to the connection, DNS rebinding, gets
nowhere). The POST follows no redirect, so a public receiver cannot send it on inward. Through a proxy the
administrator configured (HTTP(S)_PROXY), the connection is the proxy's and only the URL's host is checked."""

from __future__ import annotations

import http.client
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
    return _addresses_refusal(host, found)


def _addresses_refusal(host: str, addresses) -> str:
    """Why `host`, resolved to `addresses`, is not a webhook's ("" when every address is public)."""
    for text in sorted(addresses):
        address = ipaddress.ip_address(text.split("%")[0])
        if not address.is_global or address.is_multicast or address.is_unspecified:
            return (
                f"The webhook URL's host {host} is not a public address ({address}). Webhooks go to public "
                "addresses only, unless an administrator sets LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES=on."
            )
    return ""


class WebhookAddressRefused(OSError):
    """The host resolved, as the POST connected, to an address a webhook may not reach; the message says which."""


def _connect_to_checked_address(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *args):
    """`socket.create_connection` that resolves the host once, refuses it unless every address is public, and
    connects to one of exactly those addresses (so no second lookup can answer differently)."""
    host, port = address
    if settings.LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES:
        return socket.create_connection(address, timeout, source_address)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    refusal = _addresses_refusal(host, {info[4][0] for info in infos})
    if refusal:
        raise WebhookAddressRefused(refusal)
    failure: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            failure = exc
            sock.close()
    raise failure or OSError(f"could not connect to {host}")


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_to_checked_address


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_to_checked_address  # TLS still verifies the certificate for the name


def _proxied(request) -> bool:
    return request.has_proxy() or bool(request._tunnel_host)


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(http.client.HTTPConnection if _proxied(req) else _CheckedHTTPConnection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        connection = http.client.HTTPSConnection if _proxied(req) else _CheckedHTTPSConnection
        return self.do_open(connection, req, context=self._context, check_hostname=self._check_hostname)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer (logged with its status), never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


webhook_opener = urllib.request.build_opener(_NoRedirect(), _CheckedHTTPHandler(), _CheckedHTTPSHandler())

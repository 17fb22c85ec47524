"""A prediction request's body -> the image bytes it carries: multipart files (any field name) or JSON
{"images": [base64, ...]} / {"image": base64}. Size limits hold before anything is parsed."""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass

from django.core.handlers.wsgi import WSGIRequest

from labeling.services.imports.validation import binary_size


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


def _size(n: int) -> str:
    """A body size as the keys page states the limit (binary units: LABELLOOP_SERVING_MAX_BODY_BYTES is 20 MiB), with
    the exact bytes for a client that compares numbers: "21.0 MiB (22,020,238 bytes)"."""
    return f"{binary_size(n)} ({n:,} bytes)"


def read_body(environ: dict, *, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (by its Content-Length, before reading it)."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length:
        try:
            size = int(length)
        except ValueError:
            raise BadRequest(400, "bad Content-Length header") from None
        if size > limit:
            raise BadRequest(413, f"request body is {_size(size)}, over the {_size(limit)} limit")
        return stream.read(size) if size > 0 else b""
    if environ.get("wsgi.input_terminated"):  # chunked: read at most one byte past the limit
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise BadRequest(413, f"request body is over the {_size(limit)} limit")
        return data
    raise BadRequest(411, "send a Content-Length header")


def _b64(value: object, index: int) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(400, f"images[{index}] must be a base64 string")
    if value.startswith("data:") and "," in value:  # a data URL
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, f"images[{index}] is not valid base64") from None


def uploads_of(environ: dict, body: bytes) -> list[Upload]:
    ctype = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(400, "the body is not valid JSON") from None
        except RecursionError:  # json's answer to arrays or objects nested past the interpreter's recursion limit
            raise BadRequest(400, "the body is not valid JSON: arrays or objects nested too deeply") from None
        if not isinstance(payload, dict):
            raise BadRequest(400, 'send {"images": ["<base64>", ...]}')
        values = payload.get("images", [payload["image"]] if "image" in payload else None)
        if not isinstance(values, list):
            raise BadRequest(400, 'send {"images": ["<base64>", ...]}')
        return [Upload(name=f"images[{i}]", data=_b64(v, i)) for i, v in enumerate(values)]
    if ctype == "multipart/form-data":
        parsed = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        request = WSGIRequest(parsed)
        try:
            files = [f for name in request.FILES for f in request.FILES.getlist(name)]
        except Exception as exc:  # Django's parser: malformed multipart, too many parts
            raise BadRequest(400, f"malformed multipart body ({type(exc).__name__})") from None
        return [Upload(name=f.name or f"file {i}", data=f.read()) for i, f in enumerate(files)]
    raise BadRequest(415, "send multipart/form-data files or application/json with base64 images")

"""The prediction service: a small WSGI app, its own process (`manage.py serve_predictions`, gunicorn
`serving.wsgi_predict:application`). onnxruntime, numpy and Pillow; never torch. Django is used for settings and
the ORM only (keys, active versions, the prediction log); the web app never imports this module.

    POST /v1/projects/<slug>/predict   Authorization: Bearer <key>
        multipart/form-data files, or JSON {"images": ["<base64>", ...]}; ?top_k=5
        -> {"project", "version", "model_file", "precision", "classes", "predictions": [{"id", "name", "version",
            "model_file", "precision", "probabilities", "top_k": [{"class", "probability"}, ...]}]}; "model_file" is
            the export's ONNX file that answered ("model.onnx", "model.int8.onnx", "model.int8.vnni.onnx") and
            "precision" what it computes in ("fp32" or "int8"): an INT8 service (LABELLOOP_SERVING_PRECISION=int8)
            answers with model.onnx / fp32 where the export measured its INT8 files outside tolerance. A multi-label
            model's predictions add "labels": the classes it predicts (probability >= MULTI_LABEL_THRESHOLD, the
            threshold of its holdout figures).
        A class is named by its stored path ("shapes/angular/square"), as dataset exports and the REST API name it
        (serving.runtime.registry.served_class_names); probabilities[j] is classes[j], the model's own order.
    GET /healthz -> {"ok": true}

Every refusal is a JSON {"error": ...} with a 4xx status and logs nothing: no key or a wrong one (401), a revoked
key (401), another project's key or an unknown project (404, the same answer), a body over
LABELLOOP_SERVING_MAX_BODY_BYTES (413), more than LABELLOOP_SERVING_MAX_BATCH images (413), a file the import
would refuse (400, its reason), no servable model (409).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import DatabaseError, close_old_connections  # noqa: E402

from labeling.services.imports.validation import ImportRejected  # noqa: E402
from serving.runtime.body import BadRequest, Upload, read_body, uploads_of  # noqa: E402
from serving.runtime.log_buffer import LogBuffer  # noqa: E402
from serving.runtime.preprocess import image_decode, serving_limits, to_input  # noqa: E402
from serving.runtime.registry import ModelRegistry, ModelUnavailable  # noqa: E402
from serving.selectors.keys import api_key_for_token  # noqa: E402
from serving.services.prediction_log import LogRecord  # noqa: E402
from training.ml.export_files import predicted_labels  # noqa: E402
from training.ml.strategies import least_confidence  # noqa: E402
from training.ml.strategies import margin as margin_score  # noqa: E402

logger = logging.getLogger("serving.predict")
PREDICT = re.compile(r"^/v1/projects/(?P<slug>[-a-zA-Z0-9_]+)/predict/?$")
NOT_FOUND = "no such project"
DEFAULT_TOP_K = 5

registry = ModelRegistry()
log_buffer = LogBuffer()

STARTED = "labelloop.started"  # environ key: perf_counter() when the request reached the application


def _json(start_response, status: int, payload: dict, headers: list | None = None) -> list[bytes]:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
              409: "Conflict", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")  # fmt: skip
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
         *(headers or [])],
    )  # fmt: skip
    return [body]


def _key_for(environ: dict, slug: str):
    """The request's API key, or BadRequest: 401 without a valid key, 404 for another project's key."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BadRequest(401, "send the project's API key: Authorization: Bearer <key>")
    key = api_key_for_token(token.strip())
    if key is None:
        raise BadRequest(401, "invalid API key")
    if key.revoked_at is not None:
        raise BadRequest(401, "this API key was revoked")
    if key.project.slug != slug:
        raise BadRequest(404, NOT_FOUND)  # as if the project did not exist: a key never reveals other projects
    return key


def _top_k(environ: dict) -> int:
    raw = parse_qs(environ.get("QUERY_STRING", "")).get("top_k", [str(DEFAULT_TOP_K)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(400, "top_k must be a whole number") from None
    if value < 1:
        raise BadRequest(400, "top_k must be at least 1")
    return value


def _decode_all(uploads: list[Upload]):
    if not uploads:
        raise BadRequest(400, "no image in the request")
    if len(uploads) > settings.LABELLOOP_SERVING_MAX_BATCH:
        raise BadRequest(
            413, f"{len(uploads)} images, over the {settings.LABELLOOP_SERVING_MAX_BATCH} per request limit"
        )
    limits = serving_limits()
    decoded = []
    for index, upload in enumerate(uploads):
        try:
            decoded.append(image_decode(upload.data, limits=limits))
        except ImportRejected as exc:  # the whole request is refused: nothing predicted, nothing logged
            raise BadRequest(400, f"image {index} ({upload.name}): {exc.reason}") from None
    return decoded


def predict(environ: dict, start_response, slug: str) -> list[bytes]:
    key = _key_for(environ, slug)
    top_k = _top_k(environ)
    body = read_body(environ, limit=settings.LABELLOOP_SERVING_MAX_BODY_BYTES)
    uploads = uploads_of(environ, body)
    decoded = _decode_all(uploads)
    try:
        model = registry.model_for(key.project_id)  # this request keeps this model, whatever is swapped in meanwhile
    except ModelUnavailable as exc:
        raise BadRequest(409, exc.reason) from None
    size = int(model.preprocessing["image_size"])
    batch = np.empty((len(decoded), 3, size, size), dtype=np.float32)
    for row, d in zip(batch, decoded, strict=True):
        to_input(d.image, model.preprocessing, out=row)
    probs, embeddings = model.run(batch)
    # How sure the model is, as the queue's strategies measure it: the top class's probability and the gap to the
    # second; for a multi-label model, its least sure class decision (a second label at 0.5 is doubt, whatever the top
    # class's probability), as that decision's distance from a coin flip, min |2p - 1|: 0 with a class at 0.5, 1 when
    # every class is certain. Both: its confidence on the 0..1 scale the low-confidence threshold (0.5 by default) and
    # its alert read; max(p, 1 - p) never falls below 0.5, so no multi-label prediction would ever count as unsure.
    margins = 1.0 - margin_score(probs, multi_label=model.multi_label)
    confidences = margins if model.multi_label else 1.0 - least_confidence(probs)
    now = datetime.now(UTC)
    latency_ms = (time.perf_counter() - environ.get(STARTED, time.perf_counter())) * 1000.0
    k = min(top_k, len(model.class_names))
    predictions, records = [], []
    for i, (upload, row) in enumerate(zip(uploads, probs, strict=True)):
        order = np.argsort(-row, kind="stable")
        uid = str(uuid.uuid4())
        predictions.append({
            "id": uid,
            "name": upload.name,
            "version": model.number,
            "model_file": model.onnx_file,
            "precision": model.precision,
            "probabilities": [round(float(p), 6) for p in row],
            "top_k": [{"class": model.class_names[j], "probability": round(float(row[j]), 6)} for j in order[:k]],
        })  # fmt: skip
        labels = predicted_labels(row, model.class_names) if model.multi_label else []
        if model.multi_label:
            predictions[-1]["labels"] = labels
        embedding = embeddings[i].astype(np.float16).tobytes() if embeddings is not None else None
        records.append(
            LogRecord(
                uid=uid,
                project_id=key.project_id,
                created_at=now,
                version_number=model.number,
                top_class=model.class_names[order[0]],
                confidence=float(confidences[i]),
                margin=float(margins[i]),
                embedding=embedding,
                image=upload.data,  # the writer drops it for a project that keeps none
                image_format=decoded[i].format,
                api_key_id=key.pk,
                latency_ms=latency_ms,
                model_file=model.onnx_file,
                labels=tuple(labels),
            )
        )
    log_buffer.add(records)
    payload = {
        "project": slug, "version": model.number, "model_file": model.onnx_file, "precision": model.precision,
        "classes": model.class_names, "predictions": predictions,
    }  # fmt: skip
    return _json(start_response, 200, payload)


def application(environ: dict, start_response) -> list[bytes]:
    started = time.perf_counter()
    environ[STARTED] = started  # the prediction log's latency counts from here
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    close_old_connections()  # as Django's request_started does: drop a connection past its age or broken
    try:
        if path in ("/healthz", "/livez"):
            return _json(start_response, 200, {"ok": True})
        match = PREDICT.match(path)
        if match is None:
            return _json(start_response, 404, {"error": "not found"})
        if method != "POST":
            return _json(start_response, 405, {"error": "use POST"}, [("Allow", "POST")])
        return predict(environ, start_response, match["slug"])
    except BadRequest as exc:
        headers = [("WWW-Authenticate", 'Bearer realm="labelloop"')] if exc.status == 401 else []
        return _json(start_response, exc.status, {"error": exc.message}, headers)
    except DatabaseError:
        logger.exception("prediction service: database error")
        return _json(start_response, 503, {"error": "the database is not reachable; try again"})
    except Exception:  # a bug must not take the worker down, nor answer with a traceback
        logger.exception("prediction service: %s %s failed", method, path)
        return _json(start_response, 500, {"error": "internal error; the service logged it"})
    finally:
        close_old_connections()
        logger.debug("%s %s in %.1f ms", method, path, (time.perf_counter() - started) * 1000)

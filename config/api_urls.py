"""REST API under /api/: config wires the API modules of both apps (labeling never imports training).

/api/schema/ is the OpenAPI document; /api/docs/ renders it server-side (no CDN, works offline) with the
signed-in user's token (never cached; only a POST makes one); /api/me/token/ and /api/auth/token/ hand out tokens.
"""

import functools

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from labeling.api import queue, resources
from labeling.api.base import no_store
from labeling.api.tokens import token_get, token_replace
from serving import api as serving_api
from training import api as training_api

METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _type_of(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema:
        return " & ".join(_type_of(s, components) for s in schema["allOf"])
    if "oneOf" in schema:
        return " | ".join(_type_of(s, components) for s in schema["oneOf"])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}), components)}"
    if "enum" in schema:
        return f"{kind}: " + ", ".join(str(v) for v in schema["enum"] if v not in ("", None))
    return kind + (f" ({schema['format']})" if "format" in schema else "")


def _fields(schema: dict, components: dict) -> list[dict]:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type_of(prop, components),
            "required": name in required,
            "read_only": prop.get("readOnly", False),
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operations(schema: dict) -> list[dict]:
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for route, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            bodies = (op.get("requestBody") or {}).get("content", {})
            body_type, body = next(iter(bodies.items()), (None, {}))
            responses = []
            for code, response in op.get("responses", {}).items():
                content = next(iter((response.get("content") or {}).values()), {})
                responses.append(
                    {"code": code, "type": _type_of(content["schema"], components) if content.get("schema") else ""}
                )
            operations.append(
                {
                    "id": op.get("operationId", f"{method}-{route}"),
                    "method": method.upper(),
                    "path": route,
                    "tag": (op.get("tags") or ["api"])[0],
                    "description": op.get("description", "") or op.get("summary", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "type": _type_of(p.get("schema", {}), components),
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body_type": body_type,
                    "body": _fields(body.get("schema", {}), components) if body else [],
                    "responses": responses,
                }
            )
    return operations


@login_required
def api_docs(request: HttpRequest) -> HttpResponse:
    """Browsable API reference rendered from the OpenAPI schema on the server: no JavaScript, no CDN.

    POST creates (or replaces) the signed-in user's API token. The page shows the token: no cache may keep it."""
    if request.method == "POST":
        token_replace(user=request.user)
        return no_store(redirect("api-docs"))
    schema = _schema()
    components = schema.get("components", {}).get("schemas", {})
    token = token_get(user=request.user)
    context = {
        "info": schema.get("info", {}),
        "operations": _operations(schema),
        "components": [(name, _fields(body, components)) for name, body in sorted(components.items())],
        "token": token.key if token else "",
    }
    return no_store(render(request, "api/docs.html", context))


urlpatterns = [
    # Signed-in users and tokens only, as every other API address (docs/security.md: anonymous callers get 401).
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="api-schema"),
    path("docs/", api_docs, name="api-docs"),
    *queue.urlpatterns,
    *resources.urlpatterns,
    *training_api.urlpatterns,
    *serving_api.urlpatterns,
]

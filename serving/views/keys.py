"""The prediction service's keys page: make (shown once) and revoke project API keys, set how long the prediction
log keeps images, and the service's address. Managers and ML engineers (Capability.EXPORT). Also the web app's
answer to /v1/ paths, which only the prediction service serves: a JSON 404 that gives its address."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from labeling.permissions import Capability, project_view
from labeling.services.imports.validation import binary_size
from serving.models import ApiKey
from serving.selectors.keys import PREDICT_DEFAULT_PORT, api_keys_of, keep_images_days_of
from serving.services.keys import api_key_create, api_key_revoke, serving_settings_set


def prediction_service_url(request: HttpRequest) -> tuple[str, bool]:
    """(the prediction service's base URL, whether an administrator set it). LABELLOOP_PREDICTION_URL when set;
    otherwise this request's host on the service's default port, which is where `make demo` runs it."""
    configured = settings.LABELLOOP_PREDICTION_URL.rstrip("/")
    if configured:
        return configured, True
    host, _ = split_domain_port(request.get_host())
    return f"{request.scheme}://{host}:{PREDICT_DEFAULT_PORT}", False


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “mobile app”.")


class RetentionForm(forms.Form):
    keep_images_days = forms.IntegerField(
        min_value=0, max_value=3650, label="Keep request images (days)", help_text="0 = keep metadata only."
    )


def _page(request: HttpRequest, *, form: KeyForm, retention: RetentionForm, token: str = "", status: int = 200):
    project = request.project
    service_url, service_url_set = prediction_service_url(request)
    context = {
        "project": project,
        "role": request.role,
        "capabilities": request.capabilities,
        "keys": api_keys_of(project=project),
        "form": form,
        "retention": retention,
        "token": token,
        "service_url": service_url,
        "service_url_set": service_url_set,
        "default_port": PREDICT_DEFAULT_PORT,
        "reload_seconds": settings.LABELLOOP_SERVING_RELOAD_SECONDS,
        "max_body": binary_size(settings.LABELLOOP_SERVING_MAX_BODY_BYTES),  # as the service's 413 says it
    }
    # The token is in this response only: never cache it.
    response = render(request, "serving/keys.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _retention_form(project) -> RetentionForm:
    return RetentionForm(initial={"keep_images_days": keep_images_days_of(project_id=project.pk)})


@project_view(Capability.EXPORT)
def keys(request: HttpRequest, slug: str) -> HttpResponse:
    form = KeyForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                key, token = api_key_create(project=request.project, user=request.user, name=form.cleaned_data["name"])
            except ValidationError as exc:
                form.add_error("name", exc)
            else:
                messages.success(request, f"Key “{key.name}” made. Copy it now: it is not shown again.")
                return _page(request, form=KeyForm(), retention=_retention_form(request.project), token=token)
        return _page(request, form=form, retention=_retention_form(request.project), status=400)
    return _page(request, form=form, retention=_retention_form(request.project))


@require_POST
@project_view(Capability.EXPORT)
def key_revoke(request: HttpRequest, slug: str, key_id: int) -> HttpResponse:
    try:
        key = api_key_revoke(project=request.project, key_id=key_id, user=request.user)
    except ApiKey.DoesNotExist:
        raise Http404("No such key.") from None
    messages.success(request, f"Key {key.prefix}… (“{key.name}”) revoked: it no longer works.")
    return redirect("serving:keys", slug=slug)


@require_POST
@project_view(Capability.EXPORT)
def retention(request: HttpRequest, slug: str) -> HttpResponse:
    form = RetentionForm(request.POST)
    if not form.is_valid():
        return _page(request, form=KeyForm(), retention=form, status=400)
    serving_settings_set(project=request.project, keep_images_days=form.cleaned_data["keep_images_days"])
    days = form.cleaned_data["keep_images_days"]
    messages.success(request, f"Request images are kept {days} days." if days else "Only metadata is kept.")
    return redirect("serving:keys", slug=slug)


@csrf_exempt  # answers every method the same and changes nothing; a client with a key sends no CSRF token
def elsewhere(request: HttpRequest) -> JsonResponse:
    """/v1/... on the web app: the prediction service answers those paths, at its own address. No key is read."""
    service_url, _ = prediction_service_url(request)
    return JsonResponse(
        {
            "detail": f"This is the web app. The prediction service answers {request.path} at {service_url} "
            f"(POST {service_url}/v1/projects/<slug>/predict).",
            "prediction_service": service_url,
        },
        status=404,
    )


urlpatterns = [
    re_path(r"^v1(?:/|$)", elsewhere, name="prediction_service_elsewhere"),
    path("p/<slug:slug>/serving/keys/", keys, name="keys"),
    path("p/<slug:slug>/serving/keys/<int:key_id>/revoke/", key_revoke, name="key_revoke"),
    path("p/<slug:slug>/serving/retention/", retention, name="retention"),
]

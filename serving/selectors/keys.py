"""API keys and serving settings as the keys page and the prediction service read them."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from labeling.models import Project
from serving.models import DEFAULT_KEEP_IMAGES_DAYS, ApiKey, ServingSettings

PREDICT_DEFAULT_PORT = 8001  # manage.py serve_predictions --port; the keys page's address when none is set


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def api_key_for_token(token: str) -> ApiKey | None:
    """The key (with its project) a bearer token names, revoked or not; None for an unknown token."""
    if not token or len(token) > 200:
        return None
    return ApiKey.objects.select_related("project").filter(key_hash=token_hash(token)).first()


def api_keys_of(*, project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).select_related("created_by", "revoked_by")


def keep_images_days_of(*, project_id: int) -> int:
    days = ServingSettings.objects.filter(project_id=project_id).values_list("keep_images_days", flat=True).first()
    return DEFAULT_KEEP_IMAGES_DAYS if days is None else days

"""Project API keys for the prediction service: made by a manager or ML engineer, shown once, stored hashed.

A token is `llp_` + 32 random bytes (url-safe base64); the database keeps its sha256 and its first 12 characters
(the prefix people see on the keys page). Revoking is immediate for every process: each request looks the hash up.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.forms import name_direction_controls_refuse
from labeling.models import Project
from serving.models import ApiKey, ServingSettings
from serving.selectors.keys import token_hash

TOKEN_PREFIX = "llp_"
VISIBLE_CHARS = 12


def api_key_create(*, project: Project, user, name: str) -> tuple[ApiKey, str]:
    """Make a key for `project`; returns (key, token). The token is not stored: show it now or never. The name is
    refused (ValidationError) empty, past 100 characters, or holding a direction-control character, as project and
    class names are (labeling.constants.DIRECTION_CONTROLS says why): the keys page and the list show it."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the key a name (what will use it).")
    if len(name) > 100:
        raise ValidationError("A key name has at most 100 characters.")
    name_direction_controls_refuse(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        project=project, name=name, prefix=token[:VISIBLE_CHARS], key_hash=token_hash(token), created_by=user
    )
    return key, token


def api_key_revoke(*, project: Project, key_id: int, user) -> ApiKey:
    """Revoke a key of `project` (DoesNotExist for another project's key). Revoking twice changes nothing."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(project=project, pk=key_id)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.revoked_by = user
            key.save(update_fields=["revoked_at", "revoked_by"])
    return key


def serving_settings_set(*, project: Project, keep_images_days: int) -> ServingSettings:
    """How long the prediction log keeps request images (days; 0 = metadata only). Applies at the next prune."""
    if not 0 <= keep_images_days <= 3650:
        raise ValidationError("Keep images between 0 (metadata only) and 3650 days.")
    obj, _ = ServingSettings.objects.update_or_create(project=project, defaults={"keep_images_days": keep_images_days})
    return obj

"""API tokens that end when the password changes, and the one token check every API endpoint uses.

A key is 24 random hex digits and 16 hex digits of an HMAC (keyed by SECRET_KEY) over the user and their password
hash, the way Django binds a session to the password. A password change by any path (the admin, `manage.py
changepassword`, a future page) changes the hash, so the old key stops authenticating; no hook has to remember to
call anything. Like a session, a key also ends when Django re-hashes a password at sign-in after an upgrade raised
its hashing strength. Keys not made here (`manage.py drf_create_token`, the admin's "add token") are refused: make
one on /api/docs/ or with POST /api/me/token/ or /api/auth/token/.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.crypto import constant_time_compare, get_random_string, salted_hmac
from rest_framework import authentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

_RANDOM_HEX = 24
_SALT = "labelloop.api.token"
# A token stops working when a newer one replaces it (manage.py api_token --new, /api/docs/, POST /api/me/token/) or
# its user's password changes; the 401 names both, so that nobody reads a replaced token as a password change.
INVALID = (
    "Invalid token: it is unknown, a newer token replaced it, or its user's password changed since it was made. Get "
    "the token that works now on /api/docs/ or from POST /api/auth/token/."
)


def _binding(user, random_part: str) -> str:
    return salted_hmac(_SALT, f"{user.pk}:{random_part}:{user.password}", algorithm="sha256").hexdigest()[:16]


def token_key_valid(*, user, key: str) -> bool:
    """The key was made for this user and their current password."""
    random_part, binding = key[:_RANDOM_HEX], key[_RANDOM_HEX:]
    return len(key) == 40 and constant_time_compare(binding, _binding(user, random_part))


def token_get(*, user) -> Token | None:
    """The user's working token, or None (none made yet, or the password changed since)."""
    token = Token.objects.filter(user=user).first()
    return token if token is not None and token_key_valid(user=user, key=token.key) else None


def token_replace(*, user) -> Token:
    """Delete the user's token (if any) and make a new one bound to their current password."""
    random_part = get_random_string(_RANDOM_HEX, allowed_chars="0123456789abcdef")
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user, key=random_part + _binding(user, random_part))


def token_get_or_replace(*, user) -> Token:
    """The user's working token, or a new one when there is none (first use, or the password changed)."""
    return token_get(user=user) or token_replace(user=user)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's `Authorization: Token <key>` check, read in one plain-SQL query (it runs on every labeling call), that
    also refuses a key made before the user's last password change."""

    def authenticate_credentials(self, key):
        user_model = get_user_model()
        sql = (
            f"SELECT u.* FROM {user_model._meta.db_table} u"
            f" JOIN {Token._meta.db_table} t ON t.user_id = u.{user_model._meta.pk.column} WHERE t.key = %s"
        )
        user = next(iter(user_model.objects.raw(sql, [key])), None)
        if user is None or not token_key_valid(user=user, key=key):
            raise AuthenticationFailed(INVALID)
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user, Token(key=key, user=user)

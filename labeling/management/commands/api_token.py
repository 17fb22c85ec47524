"""`manage.py api_token USER`: print a new API token for USER (replacing their old one).

Tokens made here, on /api/docs/ or by POST /api/me/token/ end when the user's password changes; DRF's own
`drf_create_token` makes keys that Labelloop refuses (see labeling/api/tokens.py).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.api.tokens import token_replace


class Command(BaseCommand):
    help = "Print a new API token for a user (their previous token stops working)."

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="USER")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        self.stdout.write(token_replace(user=user).key)

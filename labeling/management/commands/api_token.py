"""`manage.py api_token USER`: print USER's API token, making one only when they have none that works; with `--new`,
replace it (the old one stops working at once).

The key alone goes to stdout (`TOKEN=$(manage.py api_token ann)`), what was done to stderr. Tokens made here, on
/api/docs/ or by POST /api/me/token/ end when the user's password changes; DRF's own `drf_create_token` makes keys
that Labelloop refuses (see labeling/api/tokens.py).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.api.tokens import token_get, token_replace


class Command(BaseCommand):
    help = (
        "Print a user's API token: the one they have, or a new one when they have none that works. "
        "--new replaces it: their previous token stops working."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="USER")
        parser.add_argument(
            "--new",
            action="store_true",
            help="Replace the user's token with a new one: scripts still sending the old one get 401 from then on.",
        )

    def handle(self, *args, username: str, new: bool, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        token = token_get(user=user)
        if token is not None and not new:
            self.stdout.write(token.key)
            self.stderr.write(
                f"The existing API token of {username}; --new would replace it (the old one then stops working)."
            )
            return
        self.stdout.write(token_replace(user=user).key)
        if token is not None:
            self.stderr.write(f"Replaced the API token of {username}: the old one stops working now.")
        else:
            self.stderr.write(f"Made an API token for {username} (they had none that works).")

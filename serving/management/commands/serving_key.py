"""`manage.py serving_key create PROJECT --name NAME [--user USER]`, `serving_key list PROJECT`,
`serving_key revoke PROJECT KEY_ID [--user USER]`: the prediction service's project API keys, as the keys page and
/api/projects/<slug>/serving-keys/ make them (serving/services/keys.py).

`create` prints the secret once, on a line of its own (stored hashed: it cannot be shown again). `--user` is recorded
as who made or revoked the key. Exit status 1, changing nothing, for an unknown project, user or key (a key of
another project is unknown) or a refused name.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.constants import MAX_ID
from labeling.models import Project
from serving.models import ApiKey
from serving.selectors.keys import api_keys_of
from serving.services.keys import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Make (the secret printed once), list or revoke a project's API keys for the prediction service."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = actions.add_parser("create", help="make a key and print its secret once")
        create.add_argument("project", help="project slug")
        create.add_argument("--name", required=True, help='what will use it, e.g. "mobile app" (at most 100 chars)')
        create.add_argument("--user", help="recorded as the key's maker")
        listing = actions.add_parser("list", help="the project's keys, newest first (id, prefix, name, state)")
        listing.add_argument("project", help="project slug")
        revoke = actions.add_parser("revoke", help="revoke a key: the service refuses it from the next request on")
        revoke.add_argument("project", help="project slug")
        revoke.add_argument("key_id", type=int, metavar="KEY_ID", help="the key's id (from list)")
        revoke.add_argument("--user", help="recorded as who revoked it")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}.")
        user = self._user(options.get("user"))
        if options["action"] == "create":
            try:
                key, token = api_key_create(project=project, user=user, name=options["name"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            self.stderr.write(f"Key {key.pk} ({key.prefix}…, “{key.name}”) made for {project.slug}. Copy the secret "
                              "now: it is not shown again.")  # fmt: skip
            self.stdout.write(token)
        elif options["action"] == "list":
            for key in api_keys_of(project=project):
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                self.stdout.write(f"{key.pk}\t{key.prefix}…\t{key.name}\t{state}\tmade {key.created_at:%Y-%m-%d %H:%M}")
        else:
            if not 0 < options["key_id"] <= MAX_ID:
                raise CommandError(f"No key {options['key_id']} in project {project.slug}.")
            try:
                key = api_key_revoke(project=project, key_id=options["key_id"], user=user)
            except ApiKey.DoesNotExist:
                raise CommandError(f"No key {options['key_id']} in project {project.slug}.") from None
            self.stdout.write(self.style.SUCCESS(f"Key {key.pk} ({key.prefix}…, “{key.name}”) revoked."))

    def _user(self, username: str | None):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}; nothing was changed.")
        return user

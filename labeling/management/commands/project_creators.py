"""`manage.py project_creators add|remove|list [USER ...]`: who may create projects (the "project creators" group).

Staff may always create projects; everyone else needs this group (also editable in the admin under
Authentication > Groups). Exit status 1 when a named user does not exist; nothing is changed then.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from labeling.permissions import PROJECT_CREATORS


class Command(BaseCommand):
    help = "Add users to, remove them from, or list the group that may create projects."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove", "list"])
        parser.add_argument("usernames", nargs="*", metavar="USER", help="user names (add, remove)")

    def handle(self, *args, action: str, usernames: list[str], **options):
        group, _ = Group.objects.get_or_create(name=PROJECT_CREATORS)
        if action == "list":
            if usernames:
                raise CommandError("list takes no user names.")
            for user in group.user_set.order_by("username"):
                self.stdout.write(user.get_username())
            staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(groups=group)
            for user in staff.order_by("username"):
                self.stdout.write(f"{user.get_username()} (staff)")
            return
        if not usernames:
            raise CommandError(f"{action} needs at least one user name.")
        users = list(get_user_model().objects.filter(username__in=usernames))
        missing = sorted(set(usernames) - {user.get_username() for user in users})
        if missing:
            raise CommandError("No such user: " + ", ".join(missing))
        if action == "add":
            group.user_set.add(*users)
            self.stdout.write(self.style.SUCCESS(f"May now create projects: {', '.join(sorted(usernames))}"))
        else:
            group.user_set.remove(*users)
            self.stdout.write(self.style.SUCCESS(f"May no longer create projects: {', '.join(sorted(usernames))}"))
            still = sorted(user.get_username() for user in users if user.is_staff)
            if still:
                self.stdout.write(f"Still allowed as staff: {', '.join(still)}")

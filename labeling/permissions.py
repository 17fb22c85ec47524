"""The one permission layer: every view, API endpoint, media URL and export goes through here.

Not a member of a project -> 404 (its existence is not revealed). A member whose role lacks
the capability -> 403. Two site-level rules sit above the project roles, because a project's
creator becomes its manager: creating projects (staff, or the "project creators" group), and
reading server folders (staff, or the folders staff granted to the project in the admin).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import permissions

from labeling.models import Project, Role


class Capability(StrEnum):
    VIEW = "view"
    LABEL = "label"
    REVIEW = "review"
    VIEW_METRICS = "view_metrics"
    MANAGE = "manage"
    EXPORT = "export"
    TRAIN = "train"


CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ANNOTATOR: frozenset({Capability.VIEW, Capability.LABEL}),
    Role.REVIEWER: frozenset({Capability.VIEW, Capability.LABEL, Capability.REVIEW, Capability.VIEW_METRICS}),
    Role.MANAGER: frozenset(Capability),
    Role.ML_ENGINEER: frozenset({Capability.VIEW, Capability.VIEW_METRICS, Capability.EXPORT, Capability.TRAIN}),
}


def role_can(role: str | None, capability: Capability) -> bool:
    return role is not None and capability in CAPABILITIES.get(role, frozenset())


def roles_with(capability: Capability) -> str:
    """The roles whose members may open a page that needs `capability`, in words ("managers and reviewers"), read
    from this module's one table: a job card says where a result is to a role that may not open its page."""
    labels = [label for value, label in Role.choices if role_can(value, capability)]
    names = sorted((f"{label if label[:2].isupper() else label.lower()}s" for label in labels), key=str.lower)
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else "nobody"


def may_search_label_errors(role: str | None) -> bool:
    """Who may start a label-error search (the review page's button, its view and the API): reviewers, who work
    the suspects, and whoever trains the model (managers, ML engineers)."""
    return role_can(role, Capability.REVIEW) or role_can(role, Capability.TRAIN)


# Runs on every request: in plain SQL it costs a fifth of the equivalent ORM query's CPU.
_MEMBER_PROJECT_SQL = (
    "SELECT p.*, m.role AS member_role FROM labeling_project p"
    " JOIN labeling_membership m ON m.project_id = p.id WHERE m.user_id = %s AND p.slug = %s"
)


def project_get_for_user(*, user, slug: str, capability: Capability = Capability.VIEW) -> tuple[Project, str]:
    """Return (project, role) or raise Http404 (not a member) / PermissionDenied (role too weak)."""
    if not user.is_authenticated:
        raise Http404
    project = next(iter(Project.objects.raw(_MEMBER_PROJECT_SQL, [user.pk, slug])), None)
    if project is None:
        raise Http404("No such project.")
    if not role_can(project.member_role, capability):
        raise PermissionDenied("Your role in this project does not allow this.")
    return project, project.member_role


def _api_token_user(request: HttpRequest) -> HttpResponse | None:
    """With `Authorization: Token <key>`, sign the request in as the key's user for this request only (no session);
    a 401 for a wrong key. None (nothing done) without that header."""
    if not request.headers.get("Authorization", "").startswith("Token "):
        return None
    from rest_framework.exceptions import AuthenticationFailed

    from labeling.api.tokens import TokenAuthentication  # the API's one token check

    try:
        request.user, _ = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        response = JsonResponse({"detail": str(exc.detail)}, status=401)
        response["WWW-Authenticate"] = "Token"
        return response
    return None


def project_view(capability: Capability = Capability.VIEW, *, api_token: bool = False) -> Callable:
    """Decorator for views taking `slug`: sets request.project and request.role, checks the capability.

    `api_token`: an API token in the Authorization header is accepted as well as a session (media URLs, which
    the API hands to scripts)."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args, **kwargs):
            try:
                request.project, request.role = project_get_for_user(
                    user=request.user, slug=slug, capability=capability
                )
            except (Http404, PermissionDenied):
                if not request.htmx:
                    raise
                # A page's htmx request (a labeling key, a poll) after the user lost access to the project (removed,
                # or given a role without this right) while the page was open: reload the page, which then answers
                # as a whole page why (404 / 403), instead of "Not saved: the server answered 404" on every retry.
                response = HttpResponse(status=403)
                response["HX-Refresh"] = "true"
                return response
            request.capabilities = CAPABILITIES[request.role]
            return view(request, slug, *args, **kwargs)

        if not api_token:
            return wrapper

        @functools.wraps(view)
        def with_token(request: HttpRequest, *args, **kwargs):
            return _api_token_user(request) or wrapper(request, *args, **kwargs)

        return with_token

    return decorator


class ProjectCapability(permissions.BasePermission):
    """DRF permission: the view sets `capability`; the URL carries `slug` (or `project_slug`)."""

    def has_permission(self, request, view) -> bool:
        slug = view.kwargs.get("slug") or view.kwargs.get("project_slug")
        if slug is None:
            return bool(request.user and request.user.is_authenticated)
        capability = getattr(view, "capability", Capability.VIEW)
        view.project, view.role = project_get_for_user(user=request.user, slug=slug, capability=capability)
        return True


# --------------------------------------------------------------------------------------------
# Creating projects
# --------------------------------------------------------------------------------------------

# The Django group whose members may create projects (made by migration 0008; managed in the admin
# and with `manage.py project_creators`).
PROJECT_CREATORS = "project creators"
PROJECT_CREATE_REFUSED = (
    "Creating projects needs the project-creator permission. Ask an administrator to add you to the "
    f'"{PROJECT_CREATORS}" group, or a project manager to invite you into an existing project.'
)


def can_create_projects(user) -> bool:
    """Staff, and members of the project creators group, may create projects (and so become their managers)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or user.groups.filter(name=PROJECT_CREATORS).exists()


def project_create_check(user) -> None:
    """Raise PermissionDenied (403) with a message that says how to get the permission."""
    if not can_create_projects(user):
        raise PermissionDenied(PROJECT_CREATE_REFUSED)


class CanCreateProjects(permissions.BasePermission):
    """DRF permission for an endpoint that creates projects."""

    message = PROJECT_CREATE_REFUSED

    def has_permission(self, request, view) -> bool:
        return can_create_projects(request.user)


# --------------------------------------------------------------------------------------------
# Server folders (import, batch inference)
# --------------------------------------------------------------------------------------------

SERVER_FOLDERS_OFF = "Server folders are not available in this project."


def _resolved(path: str) -> Path | None:
    """An absolute path with every symlink resolved, or None for anything else (relative, NUL byte, loop)."""
    try:
        candidate = Path(path)
        return candidate.resolve() if candidate.is_absolute() else None
    except (OSError, ValueError, RuntimeError):
        return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # unreadable parent: the same answer as a missing folder
        return False


def site_import_roots() -> list[Path]:
    """LABELLOOP_IMPORT_ROOTS, resolved: the only server folders the web may ever read."""
    roots = [_resolved(str(root)) for root in getattr(settings, "LABELLOOP_IMPORT_ROOTS", None) or []]
    return [root for root in roots if root is not None]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def granted_roots_clean(folders: list[str]) -> list[str]:
    """Check and normalise the folders staff grant to a project: each must resolve inside LABELLOOP_IMPORT_ROOTS."""
    roots = site_import_roots()
    cleaned, wrong = [], []
    for folder in folders:
        resolved = _resolved(str(folder).strip())
        if resolved is None or not _inside(resolved, roots):
            wrong.append(str(folder))
        elif str(resolved) not in cleaned:
            cleaned.append(str(resolved))
    if wrong:
        inside = ", ".join(str(root) for root in roots) or "nothing: LABELLOOP_IMPORT_ROOTS is empty"
        raise ValidationError(f"Not an absolute folder inside LABELLOOP_IMPORT_ROOTS ({inside}): {', '.join(wrong)}")
    return cleaned


def server_folder_roots(*, user, project: Project) -> list[Path]:
    """The server folders `user` may read for `project`: every LABELLOOP_IMPORT_ROOTS folder for staff; for anyone
    else only the project's granted folders, and of those only the ones still inside LABELLOOP_IMPORT_ROOTS.
    Precondition: the caller already checked the user's role in the project (import: manage; inference: export)."""
    roots = site_import_roots()
    if getattr(user, "is_staff", False):
        return roots
    granted = [_resolved(str(folder)) for folder in project.granted_import_roots or []]
    return [folder for folder in granted if folder is not None and _inside(folder, roots)]


def server_folder_resolve(*, user, project: Project, path: str) -> Path:
    """The folder `path` names, resolved, if `user` may read it for `project`; otherwise ValidationError.

    A folder outside the allowed roots, a missing one, a file and a path that cannot be resolved all get the same
    message (without the path, which the form keeps), so the answer never tells whether something exists.
    Symlinks are resolved before the check (a link inside a granted folder that points outside it is outside)."""
    roots = server_folder_roots(user=user, project=project)
    if not roots:
        raise ValidationError(SERVER_FOLDERS_OFF)
    resolved = _resolved(path)
    if resolved is None or not _inside(resolved, roots) or not _is_dir(resolved):
        raise ValidationError(
            "No such folder among the server folders open to this project: " + ", ".join(map(str, roots)) + "."
        )
    return resolved

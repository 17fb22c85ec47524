"""Project pages: list, create, overview (all project figures on one page), settings, job progress."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from labeling.constants import id_from_text
from labeling.forms import LabelClassForm, MemberForm, ProjectCreateForm, ProjectSettingsForm
from labeling.models import Annotation, Job, LabelClass, Membership, Role
from labeling.permissions import PROJECT_CREATE_REFUSED, Capability, can_create_projects, project_view, roles_with
from labeling.selectors.annotator_work import annotator_work
from labeling.selectors.class_table import (
    CLASS_TABLE_PAGED_OVER,
    ClassTable,
    class_table,
    class_table_page,
    class_table_return,
    keys_renumbered,
)
from labeling.selectors.dashboard import dashboard_summary
from labeling.services import projects as project_services


def project_context(request: HttpRequest, **extra) -> dict:
    return {"project": request.project, "role": request.role, "capabilities": request.capabilities, **extra}


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("project")
        .annotate(item_count=Count("project__items", distinct=True))
        .order_by("project__name")
    )
    return render(
        request,
        "labeling/project_list.html",
        {"memberships": memberships, "can_create_projects": can_create_projects(request.user)},
    )


@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    """The creator becomes the project's manager, so creating is a site-level permission (staff or the project
    creators group): anyone else gets 403 with the way to ask for it, and nothing is created."""
    if not can_create_projects(request.user):
        return render(request, "labeling/project_create.html", {"refused": PROJECT_CREATE_REFUSED}, status=403)
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        says_name = project_services.project_slug_says_name(data["name"])
        if data["slug"] and data["slug"] == request.POST.get("offered") and says_name:
            data["slug"] = ""  # the name was changed to one with letters after its slug was offered: made from it
        if not data["slug"] and not says_name:
            # A name with no letters an address can use (Chinese, Arabic, "写真 2024"...) would get "project-3" (or
            # "2024") for good: the form comes back once with that slug filled in, to keep or to replace.
            offered = project_services.project_slug_next(data["name"])
            form = ProjectCreateForm({**request.POST.dict(), "slug": offered})
            return render(request, "labeling/project_create.html", {"form": form, "offered": offered})
        with transaction.atomic():  # the class list was checked by the form: the project comes with all of it
            project = project_services.project_create(
                name=data["name"],
                task_type=data["task_type"],
                created_by=request.user,
                slug=data["slug"],
                instructions=data["instructions"],
                annotations_per_item=data["annotations_per_item"],
            )
            project_services.label_classes_from_paths(project=project, paths=data["classes"])
        messages.success(request, f"Project {project.name} created.")
        return redirect("labeling:project_settings", slug=project.slug)
    return render(request, "labeling/project_create.html", {"form": form})


def job_card_context() -> dict:
    """What the overview's job cards need beside the job (its page and its status poll): who may open the pages
    they point to, for a viewer whose role may not (the label-errors page: review; model exports: export)."""
    return {"opens_for": {"review": roles_with(Capability.REVIEW), "export": roles_with(Capability.EXPORT)}}


# Beyond this many classes the labels-per-class table starts folded: the page's figures come first.
CLASS_TABLE_OPEN_MAX = 20


@project_view(Capability.VIEW)
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The project's overview: item states and queue for everyone, labels per class for those who see metrics,
    annotator throughput for managers. (It was two pages, Overview and Dashboard, with the same counts.)"""
    project = request.project
    manager = Capability.MANAGE in request.capabilities
    summary = dashboard_summary(project=project, with_annotators=manager)
    jobs = Job.objects.filter(project=project).order_by("-created_at")[:10]
    return render(
        request,
        "labeling/project_detail.html",
        project_context(
            request,
            summary=summary,
            show_team=manager,
            show_classes=Capability.VIEW_METRICS in request.capabilities,
            classes_open=len(summary["classes"]) <= CLASS_TABLE_OPEN_MAX,
            jobs=jobs,
            **job_card_context(),
        ),
    )


@project_view(Capability.MANAGE)
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    settings_form = ProjectSettingsForm(instance=project)
    class_form = LabelClassForm(project=project)
    member_form = MemberForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "settings":
            overlap_before = project.annotations_per_item
            # The form edits its own copy: a refused save must leave the page's project (its header, its title) as
            # stored, not as typed
            edited = type(project).objects.get(pk=project.pk)
            settings_form = ProjectSettingsForm(request.POST, instance=edited)
            if settings_form.is_valid():
                settings_form.save()
                resolved = 0
                if edited.annotations_per_item < overlap_before:
                    resolved = project_services.project_overlap_lowered(project=edited)
                messages.success(
                    request,
                    "Settings saved."
                    + (f" {resolved} image{'s' if resolved != 1 else ''} that now have enough labels were resolved."
                       if resolved else ""),
                )  # fmt: skip
                return redirect("labeling:project_settings", slug=slug)
        elif action == "class":
            class_form = LabelClassForm(request.POST, project=project)
            if class_form.is_valid():
                before = class_table(project=project)
                try:
                    added = project_services.label_class_create(
                        project=project,
                        name=class_form.cleaned_data["name"],
                        parent=class_form.cleaned_data["parent"],
                        hotkey=class_form.cleaned_data["hotkey"] or None,
                    )
                except ValidationError as exc:
                    class_form.add_error(None, exc)
                else:
                    after = class_table(project=project)
                    path, keys = after.paths([added.pk])[added.pk], after.label_keys([added.pk])[added.pk]
                    messages.success(
                        request,
                        f"Class “{path}” added: {_keys_text(keys)} when labeling."
                        + _keys_changed(before, after, but=added.pk),
                    )
                    return _back_to_row(request, slug, added.pk, after)
        elif action == "member":
            member_form = MemberForm(request.POST)
            if member_form.is_valid():
                try:
                    saved = project_services.membership_set(project=project, **member_form.cleaned_data)
                except ValidationError as exc:
                    member_form.add_error(None, exc)
                else:
                    if saved.user_id == request.user.pk and saved.role != Role.MANAGER:
                        # No longer a manager, they may not see this page: the overview, which every role may
                        role = saved.get_role_display()
                        messages.success(request, f"Member saved: your role in this project is now {role}.")
                        return redirect("labeling:project_detail", slug=slug)
                    messages.success(request, "Member saved.")
                    return redirect("labeling:project_settings", slug=slug)
    # One read of the class table for the rows drawn, their paths, the keys an annotator presses for each (the
    # labeling page's, not the stored hotkeys) and the add-class form's parents.
    table = class_table(project=project)
    shown = class_table_page(table, find=request.GET.get("classes_find", ""), page=request.GET.get("classes_page"))
    if shown.paged:  # a text box for the parent's path, suggesting this page's classes, instead of a menu of all
        del class_form.fields["parent"]
    else:
        del class_form.fields["parent_path"]
        _parents_from(class_form, table)
    members = list(Membership.objects.filter(project=project).select_related("user").order_by("user__username"))
    # A member's Remove asks first (?remove=<membership id>): who goes, and that their labels stay
    remove_id = id_from_text(request.GET.get("remove"))
    removing = next((m for m in members if m.pk == remove_id and m.user_id != request.user.pk), None)
    return render(
        request,
        "labeling/project_settings.html",
        project_context(
            request,
            settings_form=settings_form,
            class_form=class_form,
            member_form=member_form,
            class_count=len(table),
            shown=shown,
            # Folded past CLASS_TABLE_OPEN_MAX, like the overview's class table, so the forms below stay near; open
            # again after a rename, whose message and row it returns to, and while finding or paging.
            classes_open=len(table) <= CLASS_TABLE_OPEN_MAX
            or request.GET.get("classes") == "open"
            or bool(shown.find)
            or "classes_page" in request.GET,
            members=members,
            removing=removing,
            removing_labels=_labels_given(project, removing.user) if removing else 0,
        ),
    )


def _labels_given(project, user) -> int:
    """The member's labels that stand in the project, skips left out (as the overview counts them)."""
    return annotator_work(Annotation.objects.filter(item__project=project, user=user).answers()).count()


def _labels_stay(count: int) -> str:
    return f"their {count} label{'s stay' if count != 1 else ' stays'}" if count else "they gave no labels here"


def _parents_from(form: LabelClassForm, table: ClassTable) -> None:
    """The form's parent choices from the page's read of the classes, not a query of their own when it renders
    (the same classes, order and paths as its queryset; a posted parent is still checked against the queryset)."""
    field = form.fields["parent"]
    field.choices = [("", field.empty_label), *table.parents()]


@require_POST
@project_view(Capability.MANAGE)
def label_class_archive(request: HttpRequest, slug: str, class_id: int) -> HttpResponse:
    """Archive a class with the classes under it, or restore it with them. Either renumbers the keys of the class's
    later siblings and their subclasses on the labeling page (each level is numbered in order): the message names the
    class, how many classes under it went with it, and every class whose keys changed, so that annotators can be told.
    A class under an archived one is not restored alone: the message names the class to restore."""
    label_class = get_object_or_404(LabelClass, project=request.project, pk=class_id)
    before = class_table(project=request.project)
    try:
        project_services.label_class_archive(
            project=request.project, class_id=label_class.pk, archived=not label_class.archived
        )
    except ValidationError as exc:
        messages.error(request, f"Not restored: {' '.join(exc.messages)}")
        return _back_to_row(request, slug, label_class.pk, before)
    after = class_table(project=request.project)
    path = after.paths([label_class.pk])[label_class.pk]
    was, under = {r[0]: r[5] for r in before.rows}, after.under(label_class.pk)
    went = sum(1 for r in after.rows if r[0] in under and r[5] != was.get(r[0]))  # the classes that went with it
    also = f" and the {went} class{'es' if went != 1 else ''} under it" if went else ""
    if label_class.archived:
        keys = after.label_keys([label_class.pk])[label_class.pk]
        done = f"Restored “{path}”{also}: {_keys_text(keys)} when labeling."
    elif went:
        done = f"Archived “{path}”{also}: annotators no longer see them (their labels stay)."
    else:
        done = f"Archived “{path}”: annotators no longer see it (its labels stay)."
    messages.success(request, done + _keys_changed(before, after, but=label_class.pk))
    return _back_to_row(request, slug, label_class.pk, after)


@require_POST
@project_view(Capability.MANAGE)
def label_class_rename(request: HttpRequest, slug: str, class_id: int) -> HttpResponse:
    label_class = get_object_or_404(LabelClass, project=request.project, pk=class_id)
    before = label_class.name
    try:
        renamed = project_services.label_class_rename(
            project=request.project, class_id=label_class.pk, name=request.POST.get("name", "")
        )
    except ValidationError as exc:
        messages.error(request, f"“{before}” was not renamed: {' '.join(exc.messages)}")
    else:
        if renamed.name != before:
            messages.success(request, f"“{before}” is now “{renamed.name}”.")
    return _back_to_row(request, slug, label_class.pk, class_table(project=request.project))


def _back_to_row(request: HttpRequest, slug: str, class_id: int, table: ClassTable) -> HttpResponse:
    """The settings page, its class table open at the class's row; in a paged table, found by the manager's own find
    (the form's classes_find) while that still draws the class, else by the class's name, on the page of that find
    which draws it (a short name may find more than a page of classes)."""
    query = {"classes": "open"}
    if len(table) > CLASS_TABLE_PAGED_OVER:
        name = next(r[1] for r in table.rows if r[0] == class_id)
        query["classes_find"], page = class_table_return(table, class_id, request.POST.get("classes_find", ""), name)
        if page > 1:
            query["classes_page"] = str(page)
    url = reverse("labeling:project_settings", args=[slug])
    return redirect(f"{url}?{urlencode(query)}#class-{class_id}")


def _keys_text(keys: list[str]) -> str:
    """A class's keys on the labeling page as a message names them ("keys 4 → 8 → 9"); "/ to find" for a level
    that ran out of keys."""
    return f"key{'s' if len(keys) > 1 else ''} {_arrows(keys)}" if keys else "no keys"


def _arrows(keys: list[str]) -> str:
    return " → ".join(k or "/ to find" for k in keys) or "without keys"


# A message names at most this many renumbered classes, then says how many more.
KEYS_CHANGED_NAMED = 5


def _keys_changed(before: ClassTable, after: ClassTable, *, but: int) -> str:
    """The message's note on the classes whose labeling keys changed when the class `but` was added, archived or
    restored (Keys changed for 1 class: … is now 4 → 8 → 9 (was 4 → 8 → a).), or "" when none did."""
    changed = keys_renumbered(before, after, class_id=but)
    if not changed:
        return ""
    named = changed[:KEYS_CHANGED_NAMED]
    was, now, paths = before.label_keys(named), after.label_keys(named), after.paths(named)
    listed = "; ".join(f"{paths[pk]} is now {_arrows(now[pk])} (was {_arrows(was[pk])})" for pk in named)
    more = len(changed) - len(named)
    count = f"{len(changed)} class{'es' if len(changed) != 1 else ''}"
    return f" Keys changed for {count}: {listed}" + (f"; and {more} more." if more > 0 else ".")


@require_POST
@project_view(Capability.MANAGE)
def membership_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    """POST from the settings page's confirmation (?remove=<id>); the flash names who went and says their labels
    stay."""
    membership = get_object_or_404(Membership.objects.select_related("user"), project=request.project, pk=membership_id)
    if membership.user_id == request.user.pk:
        messages.error(request, "You cannot remove yourself.")
        return redirect("labeling:project_settings", slug=slug)
    labels = _labels_given(request.project, membership.user)
    try:
        project_services.membership_remove(project=request.project, membership_id=membership_id)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{membership.user.username} removed from the project; {_labels_stay(labels)}.")
    return redirect(reverse("labeling:project_settings", args=[slug]) + "#members")


@project_view(Capability.VIEW)
def job_status(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """Progress fragment that polls itself until the job ends (htmx)."""
    job = get_object_or_404(Job, project=request.project, pk=job_id)
    return render(request, "labeling/_job_status.html", project_context(request, job=job, **job_card_context()))


urlpatterns = [
    path("", project_list, name="project_list"),
    path("projects/new/", project_create, name="project_create"),
    path("p/<slug:slug>/", project_detail, name="project_detail"),
    path("p/<slug:slug>/settings/", project_settings, name="project_settings"),
    path("p/<slug:slug>/classes/<int:class_id>/archive/", label_class_archive, name="label_class_archive"),
    path("p/<slug:slug>/classes/<int:class_id>/rename/", label_class_rename, name="label_class_rename"),
    path("p/<slug:slug>/members/<int:membership_id>/remove/", membership_remove, name="membership_remove"),
    path("p/<slug:slug>/jobs/<int:job_id>/", job_status, name="job_status"),
]

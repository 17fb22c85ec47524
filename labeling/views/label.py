"""Labeling pages: the one-keystroke labeling card, grid mode for bulk labels, the annotator's skips list.

(The old dashboard URL redirects to the project overview, which now carries its figures.)

htmx requests get the `item-card` partial of labeling/label.html; plain requests the whole page.
Every write goes through labeling.services.annotations, the same services the API uses.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from labeling.constants import MULTI_LABEL_THRESHOLD, ids_from_values
from labeling.models import Annotation, Item, LabelClass
from labeling.permissions import Capability, project_view
from labeling.selectors.annotator_work import annotation_undo_target
from labeling.selectors.classes import paths_attached
from labeling.selectors.keys import classes_with_level_keys
from labeling.selectors.queue import (
    grid_class_counts,
    grid_items,
    item_skipped_by_user,
    item_suggestions,
    label_classes_for_labeling,
    labeling_progress,
    skipped_items_for_user,
)
from labeling.selectors.training_seam import active_model_version, explanation_url
from labeling.services.annotations import LabelingConflict, annotation_create, annotation_skip, annotation_undo
from labeling.services.queue import item_claim_next, items_ahead
from labeling.views.class_list import class_list_block, page_list_key

GRID_MIN, GRID_MAX, GRID_DEFAULT = 24, 48, 36
GRID_HIDE_CAP = 2000
SKIPS_LISTED = 200


def _context(request: HttpRequest, **extra) -> dict:
    return {"project": request.project, "role": request.role, "capabilities": request.capabilities, **extra}


def _seconds(request: HttpRequest) -> float:
    """Client-measured time on the item, sent in milliseconds."""
    try:
        return max(0.0, float(request.POST.get("ms", 0)) / 1000.0)
    except ValueError:
        return 0.0


# Browser clocks this far from the server's are corrected; closer ones are trusted as they are (the correction
# itself is off by the request's travel time, which matters only for small differences).
CLOCK_SKEW_CORRECTED = timedelta(seconds=2)


def _shown_at(request: HttpRequest) -> datetime | None:
    """When the card's image appeared on the annotator's screen: the page sends its clock, in ms since the epoch.

    The page also sends its clock at the moment it posted (`client_now`); when that is more than
    CLOCK_SKEW_CORRECTED away from the server's clock, the time is moved by the difference, so a browser whose
    clock is off still records when the image was shown rather than having its labels refused.
    Absent or unreadable: None (an older page, a client without it). The service refuses a time in the future.
    """
    ms = _finite(request.POST.get("shown_at", ""))
    if ms is None or ms <= 0:
        return None
    try:
        shown = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
        client_now = _finite(request.POST.get("client_now", ""))
        if client_now is not None and client_now > 0:
            skew = datetime.now(tz=UTC) - datetime.fromtimestamp(client_now / 1000.0, tz=UTC)
            if abs(skew) > CLOCK_SKEW_CORRECTED:
                shown += skew
        return shown
    except (OverflowError, OSError, ValueError):
        return None


def _finite(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _card_context(
    request: HttpRequest, item: Item | None, *, notice: str = "", level: str = "info", undo_target: int | None = None
) -> dict:
    """`undo_target`: the annotation the card's undo withdraws (the one just saved); None: read it."""
    project = request.project
    if undo_target is None:
        undo_target = annotation_undo_target(user=request.user, project=project)
    classes = classes_with_level_keys(label_classes_for_labeling(project=project))
    suggestions = item_suggestions(item=item, classes=classes) if item is not None else []
    # The model's answer, ready for Enter: its top class, or in a multi-label project every shown class it predicts.
    preselected = []
    if suggestions and project.preselect_suggestion:
        preselected = (
            [s.class_id for s in suggestions if s.probability >= MULTI_LABEL_THRESHOLD]
            if project.is_multi_label
            else [suggestions[0].class_id]
        )
    # The images the page loads ahead: first the item reserved for this user's next card (so it is that card's).
    prefetch = items_ahead(project=project, user=request.user, current=item, limit=2) if item else []
    # The heatmap of each suggested class; the first view of the top one also computes the next items' ahead.
    explain_links = [
        (s.class_id, explanation_url(slug=project.slug, item_id=item.pk, class_id=s.class_id)) for s in suggestions
    ]
    explain_top = (
        explanation_url(
            slug=project.slug, item_id=item.pk, class_id=suggestions[0].class_id, ahead=[p.pk for p in prefetch]
        )
        if suggestions
        else ""
    )
    return _context(
        request,
        item=item,
        class_list=class_list_block(
            project=project,
            classes=classes,
            preselected=preselected,
            page_has=page_list_key(request),
        ),
        hierarchical=any(c.parent_id for c in classes),
        suggestions=suggestions,
        preselected=preselected,
        prefetch=prefetch,
        explain_top=explain_top,
        explain_links=explain_links,
        progress=labeling_progress(project=project, user=request.user),
        # The card says why the model suggests nothing for this image (holdout images are never scored).
        no_suggestion=bool(item and not suggestions and active_model_version(project)),
        skipped_before=item is not None and item_skipped_by_user(item=item, user=request.user),
        notice=notice,
        notice_level=level,
        undo_target=undo_target,
        # When the hold ends, to the second for a hold under 10 min: "09:05" for a 2½ min hold hid up to a minute of it.
        lease_clock="H:i:s" if settings.LABELLOOP_LEASE_SECONDS < 600 else "H:i",
    )


def _render_card(request: HttpRequest, item: Item | None, *, status: int = 200, **kwargs) -> HttpResponse:
    template = "labeling/label.html#item-card" if request.htmx else "labeling/label.html"
    return render(request, template, _card_context(request, item, **kwargs), status=status)


def _next_card(
    request: HttpRequest, *, status: int = 200, notice: str = "", level: str = "info", undo_target: int | None = None
) -> HttpResponse:
    if not request.htmx:
        if notice:
            (messages.error if level == "error" else messages.info)(request, notice)
        return redirect("labeling:label", slug=request.project.slug)
    item = item_claim_next(project=request.project, user=request.user)
    return _render_card(request, item, status=status, notice=notice, level=level, undo_target=undo_target)


def _invalid(request: HttpRequest, item_id: int, exc: ValidationError) -> HttpResponse:
    """Bad input (400): the same item again, with the reason."""
    if not request.htmx:
        messages.error(request, " ".join(exc.messages))
        return redirect("labeling:label", slug=request.project.slug)
    item = get_object_or_404(Item, project=request.project, pk=item_id)
    return _render_card(request, item, status=400, notice=" ".join(exc.messages), level="error")


@require_GET
@project_view(Capability.LABEL)
def label(request: HttpRequest, slug: str) -> HttpResponse:
    """The labeling page: claims (or re-serves) the user's next item."""
    item = item_claim_next(project=request.project, user=request.user)
    return _render_card(request, item)


@require_GET
@project_view(Capability.LABEL)
def label_skips(request: HttpRequest, slug: str) -> HttpResponse:
    """The annotator's own skipped items, in the order the queue serves them again (after everything else)."""
    skips = skipped_items_for_user(project=request.project, user=request.user, limit=SKIPS_LISTED)
    return render(request, "labeling/skips.html", _context(request, skips=skips, limit=SKIPS_LISTED))


@require_POST
@project_view(Capability.LABEL)
def label_submit(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    item = Item(pk=item_id, project=request.project)  # a stub: the service locks and reads the row (or 404s)
    class_ids = request.POST.getlist("class_ids")
    try:
        annotation = annotation_create(
            item=item,
            user=request.user,
            class_ids=class_ids,
            seconds_spent=_seconds(request),
            shown_at=_shown_at(request),
        )
    except Item.DoesNotExist as exc:
        raise Http404("No such item in this project.") from exc
    except ValidationError as exc:
        return _invalid(request, item_id, exc)
    except LabelingConflict as exc:
        return _next_card(request, status=409, notice=str(exc), level="error")
    return _next_card(request, undo_target=annotation.pk)


@require_POST
@project_view(Capability.LABEL)
def label_skip(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    item = Item(pk=item_id, project=request.project)  # a stub, as in label_submit
    try:
        skip = annotation_skip(
            item=item, user=request.user, seconds_spent=_seconds(request), shown_at=_shown_at(request)
        )
    except Item.DoesNotExist as exc:
        raise Http404("No such item in this project.") from exc
    except ValidationError as exc:
        return _invalid(request, item_id, exc)
    except LabelingConflict as exc:
        return _next_card(request, status=409, notice=str(exc), level="error")
    return _next_card(request, notice="Skipped.", undo_target=skip.pk)


@require_POST
@project_view(Capability.LABEL)
def label_undo(request: HttpRequest, slug: str) -> HttpResponse:
    """Withdraw the last label or skip; the card shows that item again (it is leased back to the user).

    The card's undo form names the annotation it withdraws (`annotation`, see _card_context): a press repeated
    because the answer to the first was lost is refused instead of withdrawing the label before. Empty: the card
    had nothing to undo. Absent (a page from before this field): the last one.
    """
    named = request.POST.get("annotation")
    try:
        undo = annotation_undo(
            user=request.user,
            project=request.project,
            annotation_id=None if named is None else _int_or_none(named.strip()) or 0,  # no row has id 0
        )
    except LabelingConflict as exc:
        return _next_card(request, status=409, notice=str(exc), level="error")
    except Annotation.DoesNotExist as exc:
        raise Http404(str(exc)) from exc
    if not request.htmx:
        messages.info(request, "Undone.")
        return redirect("labeling:label", slug=slug)
    return _render_card(request, undo.undoes.item, notice="Undone: label it again.")


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _grid_hide_key(project_id: int, class_id: int | None) -> str:
    return f"grid-hide:{project_id}:{class_id or 0}"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@require_GET
@project_view(Capability.LABEL)
def grid(request: HttpRequest, slug: str) -> HttpResponse:
    """Grid mode: thumbnails of unlabeled items by priority, or of the model's picks for one class."""
    project = request.project
    classes = label_classes_for_labeling(project=project)
    class_ids = {c.id for c in classes}
    source_class = _int_or_none(request.GET.get("class"))
    if source_class not in class_ids:
        source_class = None
    size = _int_or_none(request.GET.get("n")) or GRID_DEFAULT
    size = min(GRID_MAX, max(GRID_MIN, size))
    hidden = request.session.get(_grid_hide_key(project.pk, source_class), [])
    tiles = grid_items(project=project, user=request.user, class_id=source_class, limit=size, hide_ids=hidden)
    counts = grid_class_counts(project=project)
    return render(
        request,
        "labeling/grid.html",
        _context(
            request,
            classes=classes,
            tiles=tiles,
            source_class=source_class,
            size=size,
            class_menu=[{"id": c.id, "path": c.path, "count": counts.get(c.id, 0)} for c in classes],
            has_model=bool(counts),
            hidden_count=len(hidden),
        ),
    )


@require_POST
@project_view(Capability.LABEL)
def grid_apply(request: HttpRequest, slug: str) -> HttpResponse:
    """Label the selected items as X (ordinary annotations), or mark them "not X".

    "Not X" records nothing in the database: a negative is not a label in a single-label project,
    and inventing the model's second choice would put words in the annotator's mouth. The items are
    hidden from this grid source for the rest of the session, and stay in the queue for labeling.
    In a multi-label project an annotation is the image's whole set of classes, so the grid labels the selection
    with every class chosen (class_id repeated): labeling a picture of a cat and a dog "cat" would say "no dog".
    """
    project = request.project
    source_class = _int_or_none(request.POST.get("source_class"))
    wanted = request.POST.getlist("class_id") if project.is_multi_label else [request.POST.get("class_id")]
    class_ids = {_int_or_none(value) or 0 for value in wanted if value}
    targets = list(LabelClass.objects.filter(project=project, pk__in=class_ids).order_by("order", "pk"))
    if len(targets) != len(class_ids):
        raise Http404("No such class in this project.")  # a class from elsewhere: nothing changes
    names = " + ".join(t.path for t in paths_attached(targets, project=project))  # "kitchen / wild", not "wild"
    try:
        ids = ids_from_values(request.POST.getlist("item_ids"))
    except ValueError as exc:
        raise Http404("No such item in this project.") from exc  # a crafted id: nothing changes
    back = (
        reverse("labeling:grid", args=[slug])
        + "?"
        + urlencode({k: v for k, v in (("class", source_class), ("n", request.POST.get("n"))) if v})
    )
    if not ids:
        messages.error(request, "Select at least one image first.")
        return redirect(back)
    if not targets:  # the page refuses this before sending; a form sent without its script gets the same words
        messages.error(
            request,
            "Choose at least one class: the images are labeled with every class chosen."
            if project.is_multi_label
            else "Choose a class first: nothing was labeled.",
        )
        return redirect(back)
    items = list(Item.objects.filter(project=project, pk__in=ids).only("id", "project_id"))
    for item in items:
        item.project = project  # the services read the project; it is this request's
    if len(items) != len(ids):
        raise Http404("No such item in this project.")  # an id from elsewhere: nothing changes
    if request.POST.get("action") == "not":
        key = _grid_hide_key(project.pk, source_class)
        request.session[key] = (request.session.get(key, []) + [i.pk for i in items])[-GRID_HIDE_CAP:]
        messages.info(request, f"{_images(len(items))} marked not {names}; hidden from this view.")
        return redirect(back)
    # The page sends the time since the grid was shown (ms): each image labeled gets its share.
    seconds_each = _seconds(request) / max(1, len(items))
    shown_at = _shown_at(request)
    done, refused, errors = 0, 0, []
    for item in items:
        try:
            annotation_create(
                item=item,
                user=request.user,
                class_ids=[t.pk for t in targets],
                seconds_spent=seconds_each,
                shown_at=shown_at,
            )
            done += 1
        except LabelingConflict:
            refused += 1
        except ValidationError as exc:
            errors = exc.messages
            break
    if errors:
        messages.error(request, " ".join(errors))
    else:
        text = f"Labeled {_images(done)} as {names}"
        if refused:
            text += f"; {refused} {'was' if refused == 1 else 'were'} already taken"
        messages.success(request, text + ".")
    return redirect(back)


@require_GET
@project_view(Capability.VIEW)
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """The old Dashboard URL: its figures are on the project overview now (a manager sees them all there)."""
    return redirect(reverse("labeling:project_detail", args=[slug]) + "#annotators")


urlpatterns = [
    path("p/<slug:slug>/label/", label, name="label"),
    path("p/<slug:slug>/label/undo/", label_undo, name="label_undo"),
    path("p/<slug:slug>/label/skips/", label_skips, name="label_skips"),
    path("p/<slug:slug>/label/<int:item_id>/", label_submit, name="label_submit"),
    path("p/<slug:slug>/label/<int:item_id>/skip/", label_skip, name="label_skip"),
    path("p/<slug:slug>/grid/", grid, name="grid"),
    path("p/<slug:slug>/grid/apply/", grid_apply, name="grid_apply"),
    path("p/<slug:slug>/dashboard/", dashboard, name="dashboard"),
]

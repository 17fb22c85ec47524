"""Review pages: the keyboard-first review queue, suspected label errors, gold items, label-quality metrics.

Reviewers (Capability.REVIEW) work the queue; the quality page needs Capability.VIEW_METRICS; marking gold items
needs Capability.MANAGE. Verdicts go through labeling.services.reviews, the same services the API would call.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling import charts
from labeling.constants import id_from_text
from labeling.models import Item, Job, JobKind, LabelClass, Review, ReviewTask, ReviewTaskReason, Verdict
from labeling.permissions import Capability, may_search_label_errors, project_view
from labeling.selectors.keys import classes_with_level_keys
from labeling.selectors.label_answers import agreeing_and_differing, answers_by_item
from labeling.selectors.quality import quality_report
from labeling.selectors.queue import label_classes_for_labeling
from labeling.selectors.review_heatmap import review_heatmap
from labeling.selectors.reviews import (
    REASON_ORDER,
    label_error_tasks_shown,
    review_context,
    review_task_counts,
    review_task_next,
    review_task_settlement,
)
from labeling.selectors.training_seam import (
    active_model_version,
    explanation_url,
    latest_label_error_search,
    still_contested,
    suspect_decisions,
    weak_class_note,
)
from labeling.services import reviews as review_services
from labeling.views.class_list import page_list_key, review_list_block
from labeling.views.review_undo import review_undo, with_undo

# A page view refreshes the feeds at most this often per project (the feeds are set-based but not free).
REFRESH_EVERY_SECONDS = 30
CLASS_CHART_LIMIT = 20  # classes drawn in the per-class kappa chart (the table lists them all)


def _context(request: HttpRequest, **extra) -> dict:
    return {"project": request.project, "role": request.role, "capabilities": request.capabilities, **extra}


def _reason(request: HttpRequest) -> str:
    reason = request.GET.get("reason") or request.POST.get("reason") or ""
    return reason if reason in ReviewTaskReason.values else ""


def _refresh_throttled(project) -> None:
    if cache.add(f"review-refresh:{project.pk}:{project.created_at.timestamp()}", 1, REFRESH_EVERY_SECONDS):
        review_services.review_tasks_refresh(project=project)


def _card_context(request: HttpRequest, task: ReviewTask | None, reason: str, error: str = "") -> dict:
    project = request.project
    # Each class carries the key that picks it among its siblings, the same keys as on the labeling page.
    classes = classes_with_level_keys(label_classes_for_labeling(project=project))
    counts = review_task_counts(project=project)
    ctx = review_context(task=task) if task else None
    # A correction starts from the label under review: the annotation's, or else the item's resolved label (an
    # imported one, say), so that a multi-label reviewer only toggles what is wrong.
    given_ids, also_gave, others = set(), [], []
    if ctx is not None:
        given_ids = {c.pk for c in ctx.given.classes} if ctx.given else {c.pk for c in ctx.resolved}
        # Annotators who gave the very label under review are named beside it; "Other annotators" lists the rest.
        same = {g.annotation_id for g in ctx.others if ctx.given and {c.pk for c in g.classes} == given_ids}
        also_gave = [g.username for g in ctx.others if g.annotation_id in same]
        others = [g for g in ctx.others if g.annotation_id not in same]
    # The active model's heatmap of each of its top classes (the first is shown over the image).
    explain_links = (
        [(c.pk, explanation_url(slug=project.slug, item_id=ctx.item.pk, class_id=c.pk)) for c, _ in ctx.model_top]
        if ctx
        else []
    )
    return _context(
        request,
        task=task,
        ctx=ctx,
        reason=reason,
        reasons=[(r, ReviewTaskReason(r).label, counts.get(r, 0)) for r in REASON_ORDER],
        total=sum(counts.values()),
        classes=classes,
        hierarchical=any(c.parent_id for c in classes),
        given_ids=given_ids,
        also_gave=also_gave,
        others=others,
        correct_list=review_list_block(
            project=project,
            classes=classes,
            given_ids=given_ids,
            page_has=page_list_key(request),
        ),
        error=error,
        can_manage=Capability.MANAGE in request.capabilities,
        explain_links=explain_links,
        **review_heatmap(slug=project.slug, ctx=ctx, given_ids=given_ids, explain_links=explain_links),
    )


def _card_response(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    """An htmx card, plus the reason tabs swapped out of band so that their counts follow every verdict."""
    card = render_to_string("labeling/review.html#task-card", with_undo(request, context), request)
    tabs = render_to_string("labeling/review.html#review-tabs", {**context, "oob": True}, request)
    return HttpResponse(card + tabs, status=status)


@require_GET
@project_view(Capability.REVIEW)
def review(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    reason = _reason(request)
    _refresh_throttled(project)
    task = None
    if request.GET.get("task"):
        try:
            task_id = int(request.GET["task"])
        except ValueError as exc:
            raise Http404 from exc
        task = get_object_or_404(ReviewTask.objects.select_related("item"), project=project, pk=task_id)
        if task.done:
            messages.info(request, _settled_note(task))
            task = None
        elif reason and task.reason != reason:
            reason = task.reason  # the tab shown is the card's own, not the one the link named
    if task is None:
        after = request.GET.get("after", "")  # the Next link's task id ("0" or a gone task: start at the first)
        if after and id_from_text(after) is None and after.strip("0"):
            raise Http404
        task = review_task_next(project=project, reason=reason or None, after=id_from_text(after))
    if request.htmx:
        return _card_response(request, _card_context(request, task, reason))
    return render(request, "labeling/review.html", with_undo(request, _card_context(request, task, reason)))


def _settled_note(task: ReviewTask) -> str:
    """What a link to a closed task says: who settled it, when and how, or that no verdict closed it."""
    review = review_task_settlement(task=task)
    if review is None:
        return f"This task (#{task.pk}) was already closed, without a reviewer's verdict."
    verdict = review.get_verdict_display().lower()
    if review.verdict == Verdict.CORRECT:
        verdict = f"corrected to {', '.join(c.path for c in review.corrected_classes.all())}"
    when = timezone.localtime(review.created_at).strftime("%Y-%m-%d %H:%M %Z")
    return f"This task (#{task.pk}) was already settled by {review.reviewer.get_username()} at {when} ({verdict})."


@require_POST
@project_view(Capability.REVIEW)
def review_verdict(request: HttpRequest, slug: str, task_id: int) -> HttpResponse:
    project = request.project
    reason = _reason(request)
    task = get_object_or_404(ReviewTask.objects.select_related("item", "project"), project=project, pk=task_id)
    try:
        review_services.review_submit(
            task=task,
            reviewer=request.user,
            verdict=request.POST.get("verdict", ""),
            corrected_class_ids=request.POST.getlist("class_ids"),
            comment=request.POST.get("comment", ""),
        )
    except ValidationError as exc:
        error = "; ".join(exc.messages)
        if request.htmx:
            task.refresh_from_db()
            if task.done:  # settled meanwhile (another reviewer, another tab): say by whom, and go on to the next
                error = f"{_settled_note(task)} Your verdict was not saved; the next open card is below."
                shown = review_task_next(project=project, reason=reason or None, after=task.pk)
            else:
                shown = task
            return _card_response(request, _card_context(request, shown, reason, error=error), status=400)
        messages.error(request, error)
        return redirect(_review_url(project.slug, reason, task=task.pk))
    review_services.review_tasks_for_items(project=project, item_ids=[task.item_id])
    # The card after this one: a card skipped with Next comes back once the walk passes the end, not after a verdict
    if request.htmx:
        next_task = review_task_next(project=project, reason=reason or None, after=task.pk)
        return _card_response(request, _card_context(request, next_task, reason))
    return redirect(_review_url(project.slug, reason, after=task.pk))


def _review_url(slug: str, reason: str, **params) -> str:
    url = reverse("labeling:review", args=[slug])
    query = "&".join(f"{k}={v}" for k, v in ({"reason": reason, **params}).items() if v)
    return f"{url}?{query}" if query else url


@require_POST
@project_view(Capability.REVIEW)
def review_refresh(request: HttpRequest, slug: str) -> HttpResponse:
    opened = review_services.review_tasks_refresh(project=request.project)
    total = sum(opened.values())
    messages.success(request, f"Review queue refreshed: {total} new task{'s' if total != 1 else ''}.")
    return redirect(_review_url(slug, _reason(request)))


def _label_error_outcomes(project) -> dict:
    """How the reviewed suspects turned out. For each answered label-error task, the item's first verdict from the
    task's opening on decides: reject, or a correction to other classes, is a real error; accept (or a "correction"
    to the classes already given) a false alarm."""
    tasks = list(
        ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=True).values_list(
            "item_id", "created_at"
        )
    )
    reviews: dict[int, list[Review]] = {}
    item_ids = sorted({item_id for item_id, _ in tasks})
    for start in range(0, len(item_ids), 900):  # SQLite's variable limit
        for review in (
            Review.objects.filter(annotation__item_id__in=item_ids[start : start + 900])
            .select_related("annotation")
            .prefetch_related("corrected_classes", "annotation__classes")
            .order_by("created_at", "id")
        ):
            reviews.setdefault(review.annotation.item_id, []).append(review)
    real = false = 0
    for item_id, opened in tasks:
        review = next((r for r in reviews.get(item_id, []) if r.created_at >= opened), None)
        if review is None:
            continue
        same = review.verdict == Verdict.CORRECT and {c.pk for c in review.corrected_classes.all()} == {
            c.pk for c in review.annotation.classes.all()
        }
        if review.verdict == Verdict.ACCEPT or same:
            false += 1
        else:
            real += 1
    return {"reviewed": real + false, "real": real, "false": false}


@require_GET
@project_view(Capability.REVIEW)
def review_label_errors(request: HttpRequest, slug: str) -> HttpResponse:
    """The latest label-error search: the estimated share of wrong labels with its interval (or why nothing was
    judged), the suspects where the cross-validated model disagrees with the label, and how reviewed suspects
    turned out.

    The model shown on a row is the one that judged it (stored with the search), never the active version: that
    version was trained on the very label, and an older version's prediction predates it.
    """
    project = request.project
    search = latest_label_error_search(project_id=project.pk)
    details = (search.suspects or {}) if search is not None and search.status == "ok" else {}
    class_ids = set()
    for row in details.values():
        decisions = suspect_decisions(row)
        class_ids.update(row[:2] if decisions is None else (d.class_id for d in decisions))
    classes = LabelClass.objects.in_bulk(class_ids) if class_ids else {}
    known = set(classes)
    tasks, total = label_error_tasks_shown(project=project, details=details, known_classes=known, limit=200)
    answers = answers_by_item(item_ids=[task.item_id for task in tasks])
    rows = []
    version = active_model_version(project)
    explained = set(version.class_ids) if version is not None else set()
    for task in tasks:  # each one a disagreement still (the label may have changed since the search)
        detail = details[str(task.item_id)]
        resolved = getattr(task.item, "resolved", None)
        given = list(resolved.classes.all()) if resolved else []
        decisions = suspect_decisions(detail)
        if decisions is not None:
            contested = still_contested(decisions, {c.pk for c in given}, known)
            model_class = classes[contested[0].class_id]
            row = {"decisions": [(classes[d.class_id], d.given, d.p_present, d.near_present) for d in contested]}
        else:
            model_class = classes[detail[1]]
            row = {
                "given_probability": detail[3],
                "model_probability": detail[2],
                "support": detail[4] if len(detail) > 5 else None,
                "given_support": detail[5] if len(detail) > 5 else None,
            }
        agreeing, differing = agreeing_and_differing(answers.get(task.item_id, []), {c.pk for c in given})
        rows.append(
            {
                **row,
                "task": task,
                "given": given,
                "agreeing": agreeing,  # every annotator who gave the label listed
                "differing": differing,  # and what the others gave
                "model": model_class,
                # What the active model looks at for the (first contested) class the search's model predicted.
                "explain_url": explanation_url(slug=project.slug, item_id=task.item_id, class_id=model_class.pk)
                if model_class.pk in explained
                else "",
            }
        )
    job = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).order_by("-created_at").first()
    estimate = None
    if search is not None and search.estimated_share is not None:
        estimate = {
            "share": search.estimated_share * 100,
            "low": search.share_low * 100,
            "high": search.share_high * 100,
            # Of the labels, or in a multi-label project of the class decisions judged (labels x classes).
            "count": round(search.estimated_share * search.labels * (search.classes_judged or 1)),
        }
    return render(
        request,
        "labeling/review_label_errors.html",
        _context(
            request,
            rows=rows,
            total=total,
            search=search,
            estimate=estimate,
            weak=[weak_class_note(row) for row in (search.weak_classes or [])] if search else [],
            outcomes=_label_error_outcomes(project),
            job=job if job is not None and not job.finished else None,
            # Who may start a search: the same rule as training.views.quality.label_errors_find.
            can_search=may_search_label_errors(request.role),
        ),
    )


@require_http_methods(["GET", "POST"])
@project_view(Capability.MANAGE)
def item_gold(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    """GET: the gold form of an item (the review card fetches it when a manager opens it; `task` names the card to
    come back to). POST: mark the item gold with its answer classes (action=set) or stop using it as gold
    (action=clear)."""
    item = get_object_or_404(Item.objects.select_related("project"), project=request.project, pk=item_id)
    if request.method == "GET":
        back = _review_url(slug, "", task=id_from_text(request.GET.get("task", "")))
        # A gold item shows its answer; another starts at its resolved label (none: an empty choice to pick)
        answer = item.gold_classes if item.is_gold else LabelClass.objects.filter(resolved_labels__item=item)
        gold_ids = set(answer.filter(archived=False).values_list("pk", flat=True))
        classes = label_classes_for_labeling(project=request.project)
        context = _context(request, item=item, classes=classes, gold_ids=gold_ids, next=back)
        return render(request, "labeling/review.html#gold-form", context)
    try:
        if request.POST.get("action") == "clear":
            review_services.item_gold_clear(item=item)
            messages.success(request, f"Item #{item.pk} is no longer a gold item.")
        elif not any(request.POST.getlist("class_ids")):
            messages.error(request, f"Select at least one class as the gold answer: item #{item.pk} was not changed.")
        else:
            review_services.item_gold_set(item=item, class_ids=request.POST.getlist("class_ids"))
            messages.success(request, f"Item #{item.pk} is now a gold item.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    next_url = request.POST.get("next", "")
    if not next_url.startswith(f"/p/{slug}/"):
        next_url = _review_url(slug, "")
    return redirect(next_url)


@require_GET
@project_view(Capability.VIEW_METRICS)
def quality(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    report = quality_report(project=project)
    # Each accuracy with its 95 % Wilson interval and n: 0 right of 1 review is [0, 0.79], not a verdict.
    accuracy_rows = [(r.username, r.review_accuracy, r.review_interval, r.reviewed) for r in report.annotators]
    gold_rows = [(r.username, r.gold_accuracy, r.gold_interval, r.gold_answers) for r in report.annotators]
    class_rows = [(row.label_class.path, row.kappa) for row in report.classes]
    class_title = "per-class kappa"
    if len(class_rows) > CLASS_CHART_LIMIT:
        # Many classes: chart the least-agreed ones legibly; the table above lists every class.
        rated = sorted((r for r in class_rows if r[1] is not None), key=lambda r: r[1])
        class_title = f"per-class kappa: the {CLASS_CHART_LIMIT} lowest of {len(class_rows)} (all in the table above)"
        class_rows = rated[:CLASS_CHART_LIMIT]
    return render(
        request,
        "labeling/quality.html",
        _context(
            request,
            report=report,
            # A class no one labeled on a shared item has nothing to show but "0, n/a": named in one line instead.
            rated_classes=[row for row in report.classes if row.ratings],
            unrated_classes=[row.label_class.path for row in report.classes if not row.ratings],
            accuracy_chart=charts.bar_chart(accuracy_rows, title="accuracy against reviews") if accuracy_rows else None,
            gold_chart=charts.bar_chart(gold_rows, title="accuracy on gold") if any(r[1] for r in gold_rows) else None,
            class_chart=charts.bar_chart(class_rows, lo=-1.0, hi=1.0, title=class_title) if class_rows else None,
            reasons=[(r, ReviewTaskReason(r).label, report.review_counts.get(r, 0)) for r in REASON_ORDER],
        ),
    )


urlpatterns = [
    path("p/<slug:slug>/review/", review, name="review"),
    path("p/<slug:slug>/review/<int:task_id>/verdict/", review_verdict, name="review_verdict"),
    path("p/<slug:slug>/review/refresh/", review_refresh, name="review_refresh"),
    path("p/<slug:slug>/review/undo/", review_undo, name="review_undo"),
    path("p/<slug:slug>/review/label-errors/", review_label_errors, name="review_label_errors"),
    path("p/<slug:slug>/items/<int:item_id>/gold/", item_gold, name="item_gold"),
    path("p/<slug:slug>/quality/", quality, name="quality"),
]

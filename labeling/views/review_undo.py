"""Review page: undo of the reviewer's last verdict (labeling.services.reviews.undo), the review page's `z`.

Answered with a redirect to the review page, which shows the task the verdict closed again, open, with what
happened (an htmx request follows it and gets the card: labeling.views.review shows the messages on it).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from labeling.constants import id_from_text
from labeling.models import Review, ReviewTaskReason
from labeling.permissions import Capability, project_view
from labeling.services import reviews as review_services


def _review_url(slug: str, reason: str, task: int | None) -> str:
    params = [f"reason={reason}" if reason in ReviewTaskReason.values else "", f"task={task}" if task else ""]
    query = "&".join(p for p in params if p)
    return reverse("labeling:review", args=[slug]) + (f"?{query}" if query else "")


def with_undo(request: HttpRequest, context: dict) -> dict:
    """The review card's context plus the verdict its Undo (and `z`) withdraws: the reviewer's last one within the
    grace period. An htmx card also carries the messages (an undo's answer), which only a full page draws else."""
    context["undo_target"] = review_services.review_undo_target(reviewer=request.user, project=request.project)
    if request.htmx:
        context["notes"] = list(messages.get_messages(request))
    return context


@require_POST
@project_view(Capability.REVIEW)
def review_undo(request: HttpRequest, slug: str) -> HttpResponse:
    """Withdraw the reviewer's last verdict; the task it closed is the card again.

    The undo form names the verdict it withdraws (`review`): a press repeated because the answer to the first was
    lost is refused instead of withdrawing the verdict before; a verdict that is not the reviewer's in this project
    is refused too. `task` is the card shown: a refusal shows it again, with why. Empty `review`: the card had nothing
    to undo (the answer says why); absent (a form from before this field): the last one.
    """
    reason = request.POST.get("reason", "")
    named = request.POST.get("review")
    try:
        undone = review_services.review_undo(
            reviewer=request.user,
            project=request.project,
            review_id=None if named is None else id_from_text(named.strip()) or 0,  # no row has id 0
        )
    except (review_services.ReviewUndoConflict, Review.DoesNotExist) as exc:
        messages.error(request, str(exc))
        return redirect(_review_url(slug, reason, id_from_text(request.POST.get("task", ""))))
    messages.info(request, f"Undone: your verdict ({undone.verdict}) on image #{undone.item_id} is withdrawn.")
    task = undone.reopened[0].pk if undone.reopened else None
    return redirect(_review_url(slug, reason, task))

"""The rule both undos follow, a label's or skip's (labeling.services.annotations.annotation_undo) and a review
verdict's (labeling.services.reviews.undo.review_undo): what is withdrawn is the user's latest undoable one, and a
caller that names it by id gets exactly that one or nothing.

A page sends the id of what it saved last, so an undo repeated because its answer was lost withdraws nothing more:
the named one is gone (404: it is no longer the user's) or another one is now the latest (409, with why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db.models import Model, QuerySet

from labeling.constants import MAX_ID

T = TypeVar("T", bound=Model)


def undo_target(
    *,
    latest: T | None,
    named_id: int | None,
    owned: QuerySet,
    not_found: Exception,
    refused: Callable[[T | None], Exception],
    nothing: Exception,
) -> T:
    """`latest` when it may be withdrawn, else raise.

    `named_id`: the id the caller means (None: whichever is latest; 0: a page that showed nothing to undo). `owned`:
    the rows that are the user's in the project; a named id outside them raises `not_found`. A named id that is not
    `latest` raises `refused(latest)`; no `latest` at all raises `nothing`.
    """
    if named_id is not None and (latest is None or latest.pk != named_id):
        if named_id and not (0 < named_id <= MAX_ID and owned.filter(pk=named_id).exists()):
            raise not_found
        raise refused(latest)
    if latest is None:
        raise nothing
    return latest

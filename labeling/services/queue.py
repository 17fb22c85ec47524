"""The labeling queue: claim the next item for a user under a lease, release leases.

The claim is one short transaction. Each candidate query walks an index in priority order
(`item_queue_idx` for train/holdout, `item_gold_queue_idx` for gold) and stops at the first row
that no one else holds and this user has not annotated, so its cost does not grow with the
project. With an overlap above 1 the probe of partly labeled items passes over the user's own
labels that await another annotator, one index probe each (about 5 µs on PostgreSQL: 33 ms per
claim at 5,000 of them, bench/labeling_latency.py --overlap 2 --awaiting 5000).
PostgreSQL: `FOR UPDATE ... SKIP LOCKED` lets concurrent claims pass each other;
SQLite: the connection opens IMMEDIATE transactions (settings), so claims serialize.

Gold items measure annotators: the gold pool serves each annotator every gold item they have not answered, in any
state and past the overlap (one probe of `item_gold_queue_idx` per state), and holds it like an open item; its
answers never change its label (labeling.services.resolution: the gold answer is the label).

Row locks held by a writer other than a claim (a training round rewriting every open item's priority in
one transaction) would make SKIP LOCKED pass over the whole pool and tell the annotator "nothing left"
for the length of that transaction. So a claim that finds nothing asks once more without locks; when
that finds an open item, the pool was only locked, not empty, and the claim waits and tries again
(CLAIM_WAITS, about 2 s in all) before it gives up.

Skips: a skipped item leaves the user's priority order (others still get it) and comes back to
that user once nothing else is left for them, oldest skip first; skipping it again sends it to the
back of those. That fall-back runs only when the pools are empty for the user and walks the user's
own skips in time order (`annotation_user_skip_idx`): its cost grows with that user's skips, never
with the project.

Reservation (the labeling page's image prefetch): beside the item on the card, the page leases the item the user's
next card will show (item_reserve_next), by the claim's own rules: the same pool choice (so gold and holdout keep
their rates), the same claimable rule, the same locks. A user holds at most one such lease per project beyond the
item on their card. Which of the user's leases is served first is explicit, not left to clocks: the item served or
shown holds the earliest expiry, and every other live lease of the user in the project is moved to expire at least
RESERVATION_GAP after it (_served_first). A label or skip releases only the item acted on, so the next claim serves
the reserved item; an unused reservation expires and returns to the pool like any lease. Neither a claim nor a
reservation waits for a row lock while it holds another (a priority rewrite locks many rows in its own order: that
would risk a deadlock).
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Item, ItemState, Project, Split
from labeling.selectors.claimable import (  # the rule "which items may this user not get" (one home)
    NOT_LABELED_SQL,
    OPEN_STATES,
    claimable_items,
    claimable_sql,
    gold_claimable_sql,
    not_leased_to_others_sql,
    open_to_user_sql,
    rule_params,
)

# Pools a claim draws from: (name, filter). Gold and holdout are mixed in at the project's rates.
TRAIN, HOLDOUT, GOLD = "train", "holdout", "gold"
POOL_FILTERS = {
    TRAIN: {"split": Split.TRAIN, "is_gold": False},
    HOLDOUT: {"split": Split.HOLDOUT, "is_gold": False},
    GOLD: {"is_gold": True},
}


def _pool_order(project: Project, rng: random.Random) -> list[str]:
    """Which pool to try first: gold at gold_rate, else holdout at holdout_fraction, else train; then the rest."""
    if project.gold_rate > 0 and rng.random() < project.gold_rate:
        first = GOLD
    elif rng.random() < project.holdout_fraction:
        first = HOLDOUT
    else:
        first = TRAIN
    rest = [p for p in (TRAIN, HOLDOUT, GOLD) if p != first]
    # The fall-back goes to ordinary items before gold, so gold stays at roughly its rate.
    return [first, *rest]


def claim_sql(*, pool: str, lock: bool, exclude: bool = False) -> str:
    """SELECT of the best claimable item of one pool and one state (params: see _pool_params).

    `exclude`: pass over the item %(exclude)s (the one on the user's card, which is claimable to its own holder)."""
    if pool == GOLD:  # served in any state, past the overlap, to each annotator once (gold_claimable_sql)
        pool_filter = f"i.is_gold = %(gold)s AND {gold_claimable_sql('i')}"
    else:
        pool_filter = f"i.split = %(split)s AND i.is_gold = %(gold)s AND {claimable_sql('i')}"
    if exclude:
        pool_filter += " AND i.id <> %(exclude)s"
    sql = f"""
        SELECT i.* FROM labeling_item i
        WHERE i.project_id = %(project)s AND i.state = %(state)s AND {pool_filter}
        ORDER BY i.priority DESC, i.id
        LIMIT 1"""
    if lock and connection.features.has_select_for_update_skip_locked:
        sql += " FOR UPDATE OF i SKIP LOCKED"
    return sql


# The user's own live leases (partial index item_lease_idx), the one to serve first first: re-requesting gives the
# same item back. Of several (the item on the card and the one reserved after it), the earliest expiry first:
# _served_first keeps the card's item there. A user holds one or two (a few after undos). A gold item is held in any
# state (it is served past the overlap).
HELD_SQL = """
    SELECT i.* FROM labeling_item i
    WHERE i.lease_user_id = %(user)s AND i.lease_expires_at > %(now)s AND i.project_id = %(project)s
      AND (i.state IN (%(open1)s, %(open2)s) OR i.is_gold)
    ORDER BY i.lease_expires_at, i.id"""

# A reservation expires this long after the item on the card: the card's item is served first (see _served_first).
RESERVATION_GAP = timedelta(seconds=1)


# The user's skipped items that are still open for them, by the time of their latest live skip (oldest first).
# Walks the user's skips in time order on the partial index annotation_user_skip_idx; a skip followed by a
# later live skip of the same item is passed over, so a re-skipped item goes to the back.
SKIPPED_SQL = f"""
    SELECT i.* FROM labeling_annotation s JOIN labeling_item i ON i.id = s.item_id
    WHERE s.user_id = %(user)s AND s.skipped AND i.project_id = %(project)s
      AND (i.state IN (%(open1)s, %(open2)s) AND {open_to_user_sql("i")}
           OR i.is_gold AND {not_leased_to_others_sql("i")})
      AND NOT EXISTS (SELECT 1 FROM labeling_annotation u WHERE u.undoes_id = s.id)
      AND NOT EXISTS (
        SELECT 1 FROM labeling_annotation later
        WHERE later.item_id = s.item_id AND later.user_id = %(user)s AND later.skipped AND later.id > s.id
          AND NOT EXISTS (SELECT 1 FROM labeling_annotation u2 WHERE u2.undoes_id = later.id)
      )
      AND {NOT_LABELED_SQL}{{exclude}}
    ORDER BY s.created_at, s.id
    LIMIT 1"""


def skipped_claim_sql(*, lock: bool, exclude: bool = False) -> str:
    """SELECT of the user's oldest skipped item still open for them (params: see _skipped_params).

    `exclude`: pass over the item %(exclude)s (the one on the user's card)."""
    sql = SKIPPED_SQL.format(exclude=" AND i.id <> %(exclude)s" if exclude else "")
    if lock and connection.features.has_select_for_update_skip_locked:
        return sql + " FOR UPDATE OF i SKIP LOCKED"
    return sql


def _skipped_params(*, project: Project, user, now) -> dict:
    rule = rule_params(project=project, user=user, now=now)
    return {**rule, "project": project.pk, "open1": OPEN_STATES[0], "open2": OPEN_STATES[1]}


def _pool_params(*, project: Project, user, pool: str, state: str, now) -> dict:
    split = Split.HOLDOUT if pool == HOLDOUT else Split.TRAIN
    rule = rule_params(project=project, user=user, now=now)
    return {**rule, "project": project.pk, "state": state, "split": split, "gold": pool == GOLD}


def _first_in_pool(*, project: Project, user, pool: str, now, lock: bool, exclude: int | None = None) -> Item | None:
    """Best open item of one pool: one indexed probe per open state (gold: per state, any state), best (priority
    desc, id) wins."""
    if pool == GOLD:
        states = list(ItemState)
    else:
        states = [ItemState.UNLABELED] if project.annotations_per_item == 1 else list(OPEN_STATES)
    best: Item | None = None
    sql = claim_sql(pool=pool, lock=lock, exclude=exclude is not None)
    for state in states:
        params = _pool_params(project=project, user=user, pool=pool, state=state, now=now)
        params["exclude"] = exclude
        found = next(iter(Item.objects.raw(sql, params)), None)
        if found is not None and (best is None or (-found.priority, found.pk) < (-best.priority, best.pk)):
            best = found
    return best


# Pauses between claims while the open items are row-locked by another writer (seconds; ~2.2 s in all).
CLAIM_WAITS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


def item_claim_next(*, project: Project, user, lease_seconds: int | None = None, rng: random.Random | None = None):
    """Lease and return the next item this user should label, or None when there is nothing left for them.

    Order: a live lease the user already holds (re-requesting gives the same item back), else the
    highest-priority open item by Item.priority desc, id, else the user's own skipped items that are
    still open, oldest skip first (see the module docstring). `lease_seconds` defaults to
    settings.LABELLOOP_LEASE_SECONDS (read at call time so that settings overrides apply). While every
    open item is row-locked by another transaction the claim waits for it (CLAIM_WAITS), so a training
    round's priority rewrite never reads as an empty queue.
    """
    lease_seconds = settings.LABELLOOP_LEASE_SECONDS if lease_seconds is None else lease_seconds
    rng = rng or random
    for wait in (*CLAIM_WAITS, None):
        item = _claim_once(project=project, user=user, lease_seconds=lease_seconds, rng=rng)
        if item is not None or wait is None or not _open_but_locked(project=project, user=user):
            return item
        time.sleep(wait)
    return None


def _open_but_locked(*, project: Project, user) -> bool:
    """True when the claim found nothing only because row locks hid the open items (PostgreSQL's SKIP LOCKED)."""
    if not connection.features.has_select_for_update_skip_locked:
        return False  # without SKIP LOCKED a claim waits for locks itself
    now = timezone.now()
    for pool in (TRAIN, HOLDOUT, GOLD):
        if _first_in_pool(project=project, user=user, pool=pool, now=now, lock=False) is not None:
            return True
    params = _skipped_params(project=project, user=user, now=now)
    return next(iter(Item.objects.raw(skipped_claim_sql(lock=False), params)), None) is not None


def _held_params(*, project: Project, user, now) -> dict:
    held = {"project": project.pk, "user": user.pk, "now": connection.ops.adapt_datetimefield_value(now)}
    held.update(open1=OPEN_STATES[0], open2=OPEN_STATES[1])
    return held


def _first_claimable(*, project: Project, user, now, rng, exclude: int | None = None) -> Item | None:
    """The claim's choice among unleased items: the pools in _pool_order, else the user's skips (locked rows)."""
    for pool in _pool_order(project, rng):
        item = _first_in_pool(project=project, user=user, pool=pool, now=now, lock=True, exclude=exclude)
        if item is not None:
            return item
    sql = skipped_claim_sql(lock=True, exclude=exclude is not None)
    params = {**_skipped_params(project=project, user=user, now=now), "exclude": exclude}
    return next(iter(Item.objects.raw(sql, params)), None)


def _lease(item: Item, *, project: Project, user, expires) -> Item:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labeling_item SET lease_user_id = %s, lease_expires_at = %s WHERE id = %s",
            [user.pk, connection.ops.adapt_datetimefield_value(expires), item.pk],
        )
    item.lease_user, item.lease_expires_at = user, expires
    item.project = project
    return item


def _served_first(*, project: Project, user, item_id: int, after, now, wait: bool = True) -> None:
    """The user's other live leases in the project expire at `after` (RESERVATION_GAP after item_id's lease) at the
    earliest, so HELD_SQL serves item_id first: a reload shows the same item, the reserved one comes next.
    Probes item_lease_idx (a user holds one or two leases).

    `wait=False` (a caller that already holds item_id's row lock): rows locked by another writer are left as they
    are (SKIP LOCKED), so the transaction never waits for a second row while holding one; a writer that locks many
    rows in its own order (a priority rewrite) could otherwise deadlock with it.
    """
    after = connection.ops.adapt_datetimefield_value(after)
    where = "lease_user_id = %s AND lease_expires_at > %s AND lease_expires_at < %s AND project_id = %s AND id <> %s"
    params = [user.pk, connection.ops.adapt_datetimefield_value(now), after, project.pk, item_id]
    if not wait and connection.features.has_select_for_update_skip_locked:
        where = f"id IN (SELECT id FROM labeling_item WHERE {where} FOR UPDATE SKIP LOCKED)"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE labeling_item SET lease_expires_at = %s WHERE {where}", [after, *params])


def _claim_once(*, project: Project, user, lease_seconds: int, rng) -> Item | None:
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        # Leases are released on submit and skip, so a live lease means the user has not finished the item.
        held = list(Item.objects.raw(HELD_SQL + " LIMIT 2", _held_params(project=project, user=user, now=now)))
        item = held[0] if held else _first_claimable(project=project, user=user, now=now, rng=rng)
        if item is None:
            return None
        item = _lease(item, project=project, user=user, expires=expires)
        after = expires + RESERVATION_GAP
        if held[1:] and held[1].lease_expires_at < after:  # its lease now ends after the user's other one
            _served_first(project=project, user=user, item_id=item.pk, after=after, now=now, wait=False)
        return item


def item_reserve_next(
    *, project: Project, user, current: Item, lease_seconds: int | None = None, rng: random.Random | None = None
) -> Item | None:
    """Lease to the user the item their next card will show, beside `current` (the item on their card); None when
    nothing is left for them after it. For the labeling page's image prefetch: the image it loads ahead is the next
    card's.

    The reservation is a lease like a claim's, chosen by the claim's rules (_pool_order, the claimable rule, the
    skipped fall-back, SKIP LOCKED; no CLAIM_WAITS: finding nothing only means no prefetch). A live lease the user
    already holds besides `current` is the reservation (at most one is made); `current` is served before it
    (_served_first, whose rows are the only ones it waits for, before it locks any other). Its lease ends
    RESERVATION_GAP after current's, or lease_seconds from now when the user does not hold current.
    """
    lease_seconds = settings.LABELLOOP_LEASE_SECONDS if lease_seconds is None else lease_seconds
    rng = rng or random
    now = timezone.now()
    with transaction.atomic():
        held = list(Item.objects.raw(HELD_SQL, _held_params(project=project, user=user, now=now)))
        others = [i for i in held if i.pk != current.pk]
        expires = next((i.lease_expires_at for i in held if i.pk == current.pk), None)
        if expires is None:  # the user does not hold the card's item (its lease ended): nothing to keep before
            expires = now + timedelta(seconds=lease_seconds)
        else:
            expires += RESERVATION_GAP
            if others and others[0].lease_expires_at < expires:  # the card's item does not come first
                _served_first(project=project, user=user, item_id=current.pk, after=expires, now=now)
                for other in others:
                    other.lease_expires_at = max(other.lease_expires_at, expires)
                others.sort(key=lambda i: (i.lease_expires_at, i.pk))  # as HELD_SQL now orders them
        if others:
            others[0].project = project
            return others[0]
        item = _first_claimable(project=project, user=user, now=now, rng=rng, exclude=current.pk)
        return None if item is None else _lease(item, project=project, user=user, expires=expires)


def items_ahead(*, project: Project, user, current: Item, limit: int = 2) -> list[Item]:
    """The items the labeling page loads ahead of `current` (the item on the card), for image prefetch: the one
    reserved for the user's next card (item_reserve_next: a lease), then peeked ones (no lease, may be taken)."""
    reserved = item_reserve_next(project=project, user=user, current=current)
    ahead = [reserved] if reserved is not None else []
    shown = [current.pk, *(i.pk for i in ahead)]
    return ahead + items_peek_next(project=project, user=user, exclude_ids=shown, limit=limit - len(ahead))


def items_peek_next(*, project: Project, user, exclude_ids: list[int], limit: int = 2) -> list[Item]:
    """The next few train items the user would likely get (no lock, no lease): for image prefetch."""
    qs = (
        claimable_items(project=project, user=user)
        .filter(state=ItemState.UNLABELED, **POOL_FILTERS[TRAIN])
        .exclude(pk__in=exclude_ids)
        .order_by("-priority", "id")
        .only("id", "width", "height", "sha256")
    )
    return list(qs[:limit])

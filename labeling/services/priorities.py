"""Bulk writes of Item.priority: the queue serves the highest priority first.

Training calls this after scoring the pool; labeling never imports training. One statement per
call on PostgreSQL (UPDATE ... FROM unnest(arrays)), one executemany on SQLite, so 10k items take
tens of milliseconds, not 10k round trips.

Rule: a scoring that says which items it drew at random (`random_ids`) rewrites Item.picked_at_random
in the same statement: True for those, False for every other item it ranks, so the flag always
describes the latest ranking and never a stale one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from django.db import connection, transaction

from labeling.models import Item, Project

CHUNK = 5000


def item_priorities_set(
    *, project: Project, priorities: Mapping[int, float], random_ids: Collection[int] | None = None
) -> int:
    """Set Item.priority for the given item ids of `project`; returns the number of rows updated.

    Ids of other projects are ignored (the WHERE clause pins the project). NaN and infinities are
    rejected so that the queue's ordering stays total. With `random_ids` (the scoring's random draws,
    a subset of the ranked ids; empty when it drew none) each ranked item's picked_at_random is set too:
    True for those ids, False for the rest. Without it the flags are left as they are.
    """
    rows = [(int(item_id), float(value)) for item_id, value in priorities.items()]
    for item_id, value in rows:
        if not math.isfinite(value):
            raise ValueError(f"priority of item {item_id} is not a finite number: {value!r}")
    drawn = None if random_ids is None else {int(i) for i in random_ids}
    if drawn:
        stray = sorted(drawn - {r[0] for r in rows})
        if stray:
            raise ValueError(f"random draw {stray[0]} is not among the ranked items")
    if not rows:
        return 0
    table = Item._meta.db_table
    updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            if drawn is None:
                updated += _write(cursor, table, project.pk, chunk)
            else:
                updated += _write_with_flags(cursor, table, project.pk, chunk, drawn)
    return updated


def _write(cursor, table: str, project_id: int, chunk: list[tuple[int, float]]) -> int:
    if connection.vendor == "postgresql":
        cursor.execute(
            f'UPDATE "{table}" AS i SET "priority" = v.p '
            "FROM unnest(%s::bigint[], %s::double precision[]) AS v(id, p) "
            'WHERE i."id" = v.id AND i."project_id" = %s',
            [[r[0] for r in chunk], [r[1] for r in chunk], project_id],
        )
        return cursor.rowcount
    cursor.executemany(
        f'UPDATE "{table}" SET "priority" = %s WHERE "id" = %s AND "project_id" = %s',
        [(value, item_id, project_id) for item_id, value in chunk],
    )
    return max(cursor.rowcount, 0)


def _write_with_flags(cursor, table: str, project_id: int, chunk: list[tuple[int, float]], drawn: set[int]) -> int:
    if connection.vendor == "postgresql":
        cursor.execute(
            f'UPDATE "{table}" AS i SET "priority" = v.p, "picked_at_random" = v.r '
            "FROM unnest(%s::bigint[], %s::double precision[], %s::boolean[]) AS v(id, p, r) "
            'WHERE i."id" = v.id AND i."project_id" = %s',
            [[r[0] for r in chunk], [r[1] for r in chunk], [r[0] in drawn for r in chunk], project_id],
        )
        return cursor.rowcount
    cursor.executemany(
        f'UPDATE "{table}" SET "priority" = %s, "picked_at_random" = %s WHERE "id" = %s AND "project_id" = %s',
        [(value, item_id in drawn, item_id, project_id) for item_id, value in chunk],
    )
    return max(cursor.rowcount, 0)

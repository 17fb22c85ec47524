"""Bulk writes of Item.priority: the queue serves the highest priority first.

Training calls this after scoring the pool; labeling never imports training. One statement per
call on PostgreSQL (UPDATE ... FROM unnest(arrays)), one executemany on SQLite, so 10k items take
tens of milliseconds, not 10k round trips.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from django.db import connection, transaction

from labeling.models import Item, Project

CHUNK = 5000


def item_priorities_set(*, project: Project, priorities: Mapping[int, float]) -> int:
    """Set Item.priority for the given item ids of `project`; returns the number of rows updated.

    Ids of other projects are ignored (the WHERE clause pins the project). NaN and infinities are
    rejected so that the queue's ordering stays total.
    """
    rows = [(int(item_id), float(value)) for item_id, value in priorities.items()]
    for item_id, value in rows:
        if not math.isfinite(value):
            raise ValueError(f"priority of item {item_id} is not a finite number: {value!r}")
    if not rows:
        return 0
    table = Item._meta.db_table
    updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            if connection.vendor == "postgresql":
                cursor.execute(
                    f'UPDATE "{table}" AS i SET "priority" = v.p '
                    "FROM unnest(%s::bigint[], %s::double precision[]) AS v(id, p) "
                    'WHERE i."id" = v.id AND i."project_id" = %s',
                    [[r[0] for r in chunk], [r[1] for r in chunk], project.pk],
                )
                updated += cursor.rowcount
            else:
                cursor.executemany(
                    f'UPDATE "{table}" SET "priority" = %s WHERE "id" = %s AND "project_id" = %s',
                    [(value, item_id, project.pk) for item_id, value in chunk],
                )
                updated += max(cursor.rowcount, 0)
    return updated

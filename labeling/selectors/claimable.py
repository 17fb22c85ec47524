"""Which items a user may not get, and which they may: the one home of that rule (a read).

The claim (labeling.services.queue) splices the SQL into its raw, locking queries; the peek, the grid and the
annotation service use it through the ORM. A selector, so reads never need to import the queue service.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import BooleanField, Expression, F, QuerySet
from django.utils import timezone

from labeling.models import Item, ItemState, Project, Verdict

OPEN_STATES = (ItemState.UNLABELED, ItemState.PARTIAL)


# Which items a user may not get: the one home of that rule. It is written once, in SQL about one row, and used
# twice: spliced into the claim's raw SQL (the hot path: building the equivalent nested Exists/Subquery in the ORM
# cost more CPU than running it) and, through _RowSql, into the ORM queries (peek, grid). Tables are ours, values
# are parameters. COALESCE(undoes_id, 0) = 0 rather than IS NULL: SQLite would otherwise probe the unique index on
# undoes_id (every non-undo row) instead of annotation_item_user_idx.


def _keeps_item_away_sql(a: str, *, skips: bool) -> str:
    """Annotation row `a` is live and keeps its item from its user: not an undo, not undone, and a skip (when
    `skips`) or a label whose latest review is not `reject`."""
    not_rejected = f"""COALESCE((SELECT r.verdict FROM labeling_review r WHERE r.annotation_id = {a}.id
                             ORDER BY r.created_at DESC, r.id DESC LIMIT 1), '') <> '{Verdict.REJECT.value}'"""
    kind = f"({a}.skipped OR {not_rejected})" if skips else f"NOT {a}.skipped AND {not_rejected}"
    return f"""COALESCE({a}.undoes_id, 0) = 0
          AND NOT EXISTS (SELECT 1 FROM labeling_annotation u WHERE u.undoes_id = {a}.id)
          AND {kind}"""


def _kept_away_sql(item_id: str, *, skips: bool) -> str:
    """The user (%(user)s) has a live annotation of item `item_id` that keeps it from them (probes
    annotation_item_user_idx).

    `LIMIT 1 OFFSET 0` keeps it a probe per item: without it PostgreSQL may turn the EXISTS into an anti-join
    against every live annotation of the user, which it estimates at a few dozen rows (the filter is opaque to
    it) and compares with each candidate item in turn. A user of an overlap-2 project whose 5,000 labels
    waited for a second annotator then waited 0.3 s for each claim, 5 s at 20,000."""
    return f"""EXISTS (
        SELECT 1 FROM labeling_annotation a
        WHERE a.item_id = {item_id} AND a.user_id = %(user)s AND {_keeps_item_away_sql("a", skips=skips)}
        LIMIT 1 OFFSET 0
    )"""


def not_leased_to_others_sql(t: str) -> str:
    """Item row `t` has no one else's live lease at %(now)s."""
    return f"({t}.lease_expires_at IS NULL OR {t}.lease_expires_at <= %(now)s OR {t}.lease_user_id = %(user)s)"


def open_to_user_sql(t: str) -> str:
    """Item row `t` has a free annotation slot (< %(overlap)s) and no one else's live lease at %(now)s."""
    return f"{t}.annotation_count < %(overlap)s AND {not_leased_to_others_sql(t)}"


# Neither a live label nor a live skip of the user: the item is in the user's priority order.
NOT_EXCLUDED_SQL = f"NOT {_kept_away_sql('i.id', skips=True)}"
# No live label of the user (a skip does not count): the user may still label or skip the item.
NOT_LABELED_SQL = f"NOT {_kept_away_sql('i.id', skips=False)}"


def claimable_sql(t: str) -> str:
    """Item row `t` is in the user's priority order: a free slot, no one else's lease, no live label or skip of
    theirs. Params: user, overlap, now (see rule_params)."""
    return f"{open_to_user_sql(t)} AND NOT {_kept_away_sql(f'{t}.id', skips=True)}"


def gold_claimable_sql(t: str) -> str:
    """Gold item row `t` is in the user's priority order: no one else's lease, no live label or skip of theirs. Every
    annotator answers a gold item once, whatever its state and annotation count (it measures them). Params: user,
    now (see rule_params)."""
    return f"{not_leased_to_others_sql(t)} AND NOT {_kept_away_sql(f'{t}.id', skips=True)}"


def rule_params(*, project: Project, user, now) -> dict:
    return {
        "user": user.pk,
        "overlap": project.annotations_per_item,
        "now": connection.ops.adapt_datetimefield_value(now),
    }


class _RowSql(Expression):
    """A condition on the row of the query's own model written in SQL: `{t}` stands for that row's table alias and
    `%(name)s` for params[name]. It lets an ORM query use the raw SQL's own text of a rule."""

    output_field = BooleanField()

    def __init__(self, sql: str, params: dict | None = None):
        super().__init__()
        self.sql, self.params, self.row = sql, params or {}, F("pk")

    def get_source_expressions(self):
        return [self.row]

    def set_source_expressions(self, exprs):
        (self.row,) = exprs

    def as_sql(self, compiler, connection):
        sql = self.sql.format(t=compiler.quote_name_unless_alias(self.row.alias))
        names = re.findall(r"%\((\w+)\)s", sql)
        return re.sub(r"%\(\w+\)s", "%s", sql), [self.params[name] for name in names]


def claimable_items(*, project: Project, user, now=None) -> QuerySet[Item]:
    """Items of the project in the user's priority order (any state: callers narrow it), by claimable_sql."""
    params = rule_params(project=project, user=user, now=now or timezone.now())
    return Item.objects.filter(project=project).filter(_RowSql(claimable_sql("{t}"), params))

"""16 annotator processes, each with its own PostgreSQL connection, label a 1,000-item project to the end.

No item gets more annotations than the overlap, none fewer, none is lost, and nobody sees an error.
The worker processes are spawned fresh and call django.setup() against the test database, so this
module imports Django models only inside functions.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import timedelta

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROCESSES = 16
# 1,000 items: 60 to 125 labels per process, thousands of contended claims. Each label costs about 20 ms of CI's two
# cores (16 processes, overlap 2: 92 s at 2,000 items); LABELLOOP_CONCURRENCY_ITEMS=10000 runs a bigger project.
ITEMS = int(os.environ.get("LABELLOOP_CONCURRENCY_ITEMS", 1000))


def _init_worker(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def _label_until_done(args: tuple[int, int, list[int]]) -> tuple[int, list[str]]:
    """Claim and label until nothing is left for this user; returns (labels made, errors)."""
    project_id, user_id, class_ids = args
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from labeling.models import Project
    from labeling.selectors.claimable import OPEN_STATES, claimable_items
    from labeling.services.annotations import annotation_create
    from labeling.services.queue import item_claim_next

    project = Project.objects.get(pk=project_id)
    user = get_user_model().objects.get(pk=user_id)
    made, errors = 0, []
    deadline = time.monotonic() + 480  # generous: a shared CI box can be slow
    while time.monotonic() < deadline and len(errors) < 20:
        try:
            item = item_claim_next(project=project, user=user)
        except Exception as exc:
            errors.append(f"claim: {exc!r}")
            continue
        if item is None:
            # Something may still be open for me but held (a lease, or a row lock skipped over): wait for it. The
            # queue's own rule, asked as if every lease had run out.
            later = timezone.now() + timedelta(days=1)
            waiting = claimable_items(project=project, user=user, now=later).filter(state__in=OPEN_STATES).exists()
            if not waiting:
                break
            time.sleep(0.02)
            continue
        try:
            annotation_create(item=item, user=user, class_ids=[class_ids[item.pk % len(class_ids)]], seconds_spent=0.1)
            made += 1
        except Exception as exc:
            errors.append(f"annotate {item.pk}: {exc!r}")
    connection.close()
    return made, errors


@pytest.fixture
def worker_pool(settings):
    from django.db import connection

    from tests.conftest import ROOT, database_url_for_workers

    if connection.vendor != "postgresql":
        pytest.skip("the concurrency test runs on PostgreSQL (SQLite serializes writers anyway)")
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_workers(),
        "LABELLOOP_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONPATH": str(ROOT),
    }
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES, initializer=_init_worker, initargs=(env,)) as pool:
        yield pool


@pytest.mark.parametrize("overlap", [1, 2])
def test_sixteen_annotators_label_everything_exactly_overlap_times(
    overlap, worker_pool, project_factory, label_class_factory, member_of
):
    from django.db.models import Count, Q

    from labeling.models import Annotation, Item, ItemState
    from tests.factories import bulk_items

    project = project_factory(annotations_per_item=overlap, holdout_fraction=0.1)
    classes = [label_class_factory(project=project, name=n).pk for n in ("a", "b", "c")]
    items = bulk_items(project, ITEMS)
    Item.objects.filter(pk__in=[i.pk for i in items[: ITEMS // 10]]).update(split="holdout")
    users = [member_of(project) for _ in range(PROCESSES)]

    results = worker_pool.map(_label_until_done, [(project.pk, u.pk, classes) for u in users])

    errors = [e for _, errs in results for e in errs]
    assert errors == []
    assert sum(made for made, _ in results) == ITEMS * overlap
    rows = Item.objects.filter(project=project).annotate(
        n=Count("annotations", filter=Q(annotations__skipped=False)),
        people=Count("annotations__user", distinct=True),
    )
    assert rows.count() == ITEMS
    assert sorted({(r.n, r.people, r.annotation_count, r.state) for r in rows}) == [
        (overlap, overlap, overlap, ItemState.LABELED)
    ]
    assert Annotation.objects.filter(item__project=project).count() == ITEMS * overlap
    assert not Item.objects.filter(project=project, lease_user__isnull=False).exists()

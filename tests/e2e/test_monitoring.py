"""The Monitoring page in a real browser: it draws its charts for a project with logged predictions, and "send to
queue" puts the chosen production images in front of an annotator."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from labeling.models import Item, ItemState, Role
from serving.models import DriftReport, PredictionLog
from tests.factories import png_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_monitoring_charts_and_send_to_queue_reach_an_annotator(
    page, browser, live_server, login, project_factory, label_class_factory, item_factory, member_of, tmp_path
):
    # Given a project with 40 logged predictions over 4 days (images kept), a drift report, and only labeled items
    project = project_factory(slug="shop", name="Shop")
    for name in ("shoe", "bag"):
        label_class_factory(project=project, name=name)
    item_factory(project=project, state=ItemState.LABELED)
    now = timezone.now()
    rows = []
    for k in range(40):
        uid = uuid.uuid4()
        image = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(png_bytes(80_000 + k)))
        rows.append(
            PredictionLog(
                uid=uid, project=project, created_at=now - timedelta(hours=k * 2), version_number=1,
                top_class=("shoe", "bag")[k % 2], confidence=0.3 + 0.015 * k, margin=0.1, image=image,
            )
        )  # fmt: skip
    PredictionLog.objects.bulk_create(rows)
    DriftReport.objects.create(
        project=project, version_number=1, window_start=now - timedelta(days=1), window_end=now, n_production=40,
        n_reference=120, statistic=0.2, p_value=0.003, threshold=0.01, drifted=True, status="done", progress=1.0,
    )  # fmt: skip
    member_of(project, Role.MANAGER, "boss")
    member_of(project, Role.ANNOTATOR, "ann")

    # When the manager opens the Monitoring page
    login("boss")
    page.goto(f"/p/{project.slug}/serving/monitoring/")

    # Then the volume, confidence and drift charts are drawn with visible marks
    assert page.locator("#total-predictions").inner_text() == "40"
    days = {timezone.localdate(row.created_at) for row in rows}
    assert page.locator("#volume svg rect.bar").count() == len(days)
    assert page.locator("#confidence svg polyline").count() == 3
    assert page.locator("#drift svg line.threshold").count() == 1
    assert page.locator("#drift svg rect.mark").count() == 1
    assert page.locator("#class-mix svg").count() == 2
    box = page.locator("#volume svg").bounding_box()
    assert box is not None
    assert box["width"] > 300
    page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)
    assert (tmp_path / "monitoring.png").stat().st_size > 0

    # When they send the 3 least-confident production images to the queue
    form = page.locator("#send-to-queue form").first
    form.locator("select[name=order]").select_option("lowest_confidence")
    form.locator("input[name=limit]").fill("3")
    form.locator("button[type=submit]").click()

    # Then the page follows the import job to its end
    page.wait_for_selector(".job[data-status=succeeded]")
    sent = list(PredictionLog.objects.filter(project=project).exclude(queued_at=None))
    assert sorted(log.confidence for log in sent) == pytest.approx([0.3, 0.315, 0.33])
    sent_items = set(Item.objects.filter(project=project, sha256__in=[log.image_sha256 for log in sent])
                     .values_list("pk", flat=True))  # fmt: skip
    assert len(sent_items) == 3

    # And the annotator's labeling page shows one of them
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 800})
    annotator = context.new_page()
    annotator.goto("/accounts/login/")
    annotator.fill("input[name=username]", "ann")
    annotator.fill("input[name=password]", "pw")
    annotator.click("button[type=submit]")
    annotator.wait_for_url(lambda url: "/accounts/login/" not in url)
    annotator.goto(f"/p/{project.slug}/label/")
    shown = annotator.locator("#item-image").get_attribute("alt")
    assert int(shown.removeprefix("Image ")) in sent_items
    annotator.screenshot(path=str(tmp_path / "monitoring-queue.png"))
    context.close()

"""A heatmap is computed by a real Celery worker on the gpu queue (real Redis), asked for by the page's fragment."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import wait_for
from tests.training.explain_helpers import explained_project
from training.models import Explanation, ExplanationStatus

pytestmark = [pytest.mark.integration]


def test_the_gpu_worker_computes_the_heatmap_the_page_polls_for(
    project_factory, label_class_factory, item_factory, member_of, start_worker, client
):
    # given: a project with an active model, and a worker that listens to the gpu queue only
    project, classes, items, _, annotator, _ = explained_project(
        project_factory, label_class_factory, item_factory, member_of, n=1
    )
    worker = start_worker(queues="gpu")
    client.force_login(annotator)
    url = reverse("training:explanation", args=[project.slug, items[0].pk, classes[2].pk])
    # when: the page asks for the heatmap, then polls
    first = client.get(url).content.decode()
    assert "Computing the heatmap of bird" in first
    wait_for(
        lambda: Explanation.objects.get().status in (ExplanationStatus.DONE, ExplanationStatus.FAILED),
        60,
        what=f"the heatmap; worker log:\n{worker.output()[-2000:]}",
    )
    polled = client.get(url + "?version=1&poll=1").content.decode()
    # then: the worker computed it, and the page shows the overlay it serves
    row = Explanation.objects.get()
    assert row.status == ExplanationStatus.DONE, row.error
    png_url = reverse("training:explanation_png", args=[project.slug, row.pk])
    assert f'src="{png_url}"' in polled
    answer = client.get(png_url)
    assert answer.status_code == 200
    assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"

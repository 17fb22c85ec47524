"""The model page's runs table on a desktop screen: a wide table (many runs with long worker names, stages and an
opened error) scrolls inside its card, from the keyboard too, instead of running past the card's right edge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Role
from training.models import RunMode, RunStatus, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# A worker's host name is one word (no line break at a dot): a table that keeps words whole cannot wrap it.
WORKER = "celery@gpuworker01.training.labelloop.example.internal"
# An error is shown as written (a <pre>): a traceback's long line does not wrap.
ERROR = (
    "Traceback (most recent call last):\n"
    '  File "/srv/labelloop/.venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1736, in '
    "_wrapped_call_impl\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of 79.10 GiB "
    "of which 1.12 GiB is free. Including non-PyTorch memory, this process has 77.96 GiB memory in use."
)
# The right edge of what is drawn of an element: its box, cut by every ancestor that clips or scrolls its overflow.
VISIBLE_RIGHT = """el => {
  let right = el.getBoundingClientRect().right;
  for (let a = el.parentElement; a; a = a.parentElement) {
    if (getComputedStyle(a).overflowX === "visible") continue;
    right = Math.min(right, a.getBoundingClientRect().left + a.clientLeft + a.clientWidth);
  }
  return right;
}"""


def test_a_wide_runs_table_scrolls_inside_its_card(page, login, project_factory, member_of):
    # Given twelve finished runs with long worker names, stages, mode reasons, timings and errors
    project = project_factory(name="Wide runs")
    member_of(project, Role.ML_ENGINEER, "mle")
    start = timezone.now() - timedelta(hours=2)
    for n in range(12):
        TrainingRun.objects.create(
            project=project, status=RunStatus.FAILED if n % 2 else RunStatus.SUCCEEDED, mode=RunMode.FINETUNE,
            mode_reason="asked for auto: the worker has CUDA (NVIDIA H100 80GB HBM3), so it fine-tunes the backbone",
            stage="evaluating_holdout_predictions_on_worker", device="cuda:0 (NVIDIA H100 80GB HBM3)",
            worker=WORKER, label_count=1200 + n, error=ERROR if n % 2 else "",
            timings={"embed": 12.5, "train": 340.25, "evaluate": 8.0, "score_unlabeled": 95.5},
            started_at=start + timedelta(minutes=n), finished_at=start + timedelta(minutes=n + 6),
        )  # fmt: skip

    # When the ML engineer opens the model page on a 1280 px wide screen, and the newest failed run's error
    page.set_viewport_size({"width": 1280, "height": 900})
    login("mle")
    page.goto(f"/p/{project.slug}/model/")
    page.locator("table.runs tr.run-error summary").first.click()
    assert page.locator("table.runs tr.run-error pre").first.is_visible()

    # Then the table ends inside its card, and its region scrolls sideways to show the rest
    table = page.locator("table.runs")
    card = page.locator("#model-live .card", has=table)
    assert table.locator("tbody tr[id^=run-]").count() == 12
    card_right = card.evaluate("el => el.getBoundingClientRect().right")
    assert table.evaluate(VISIBLE_RIGHT) <= card_right + 0.5
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    region = page.get_by_role("region", name="Runs table")
    assert region.evaluate("el => el.contains(document.querySelector('table.runs'))")
    assert region.evaluate("el => el.scrollWidth > el.clientWidth")

    # And a keyboard user can focus the region and scroll it with the arrow keys
    assert region.get_attribute("tabindex") == "0"
    region.focus()
    assert region.evaluate("el => el === document.activeElement")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('[aria-label=\"Runs table\"]').scrollLeft > 0")

    # And the words stay whole: the worker's name is on one line, not broken inside it
    worker = table.locator("tbody tr[id^=run-] td:nth-child(8)").first
    assert worker.inner_text() == WORKER
    lines = "td => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; }"
    assert worker.evaluate(lines) == 1

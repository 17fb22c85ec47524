"""The one rule for when a progress row is written (training.services.progress_gate), shared by a training run's
progress and a label-error search's job: a new stage label writes, a stage's end writes, otherwise at most every
0.5 s, so the page's bar (polled every second) moves without a write per batch."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from training.models import RunStatus, TrainingRun
from training.services.progress_gate import WRITE_INTERVAL, ProgressGate
from training.services.run_progress import RunProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def gate(clock):
    return ProgressGate(clock=clock)


def test_the_interval_is_half_a_second():
    assert WRITE_INTERVAL == 0.5


def test_the_first_report_writes(gate):
    assert gate.due("embeddings", 0, 50)


def test_a_new_label_writes_at_once(gate, clock):
    # Given a report just written
    assert gate.due("embeddings", 1, 50)
    # When the next stage begins in the same instant
    # Then it is written, and a return to the old label is a change too
    assert gate.due("cross-validating: fold 1 of 3", 0, 3)
    assert gate.due("embeddings", 2, 50)


@pytest.mark.parametrize(("done", "total"), [(50, 50), (51, 50), (0, 0)])
def test_a_stage_end_writes_at_once(gate, done, total):
    assert gate.due("embeddings", 1, 50)
    assert gate.due("embeddings", done, total)


def test_a_burst_within_half_a_second_writes_once_then_again_after(gate, clock):
    # Given a stage that reports every 0.01 s
    written = []
    for done in range(1, 41):  # 0.00 .. 0.39 s after the first report
        if gate.due("embeddings", done, 100):
            written.append(done)
        clock.now += 0.01
    # Then only the first of the burst was written
    assert written == [1]

    # When 0.5 s have passed since that write
    clock.now = 100.0 + 0.5
    # Then the next report is written, and the interval starts again from it
    assert gate.due("embeddings", 41, 100)
    clock.now += 0.49
    assert not gate.due("embeddings", 42, 100)
    clock.now += 0.01
    assert gate.due("embeddings", 43, 100)


def test_a_custom_interval(clock):
    gate = ProgressGate(min_interval=2.0, clock=clock)
    assert gate.due("training", 1, 10)
    clock.now += 1.0
    assert not gate.due("training", 2, 10)
    clock.now += 1.0
    assert gate.due("training", 3, 10)


@pytest.mark.django_db
def test_a_running_runs_row_follows_the_gate(project_factory, clock):
    # Given a running run and its progress on a fake clock
    run = TrainingRun.objects.create(project=project_factory(), status=RunStatus.RUNNING, worker="w1@a")
    progress = RunProgress(run.pk)
    progress.gate.clock = clock

    # When a stage reports 20 batches within 0.2 s
    with CaptureQueriesContext(connection) as burst:
        for done in range(1, 21):
            progress(done, 100, "embedding")
            clock.now += 0.01
    # Then the row was written once, with the first report
    assert sum(q["sql"].startswith("UPDATE") for q in burst.captured_queries) == 1
    run.refresh_from_db()
    assert (run.stage, run.progress) == ("embedding", 0.01)

    # When 0.5 s have passed, and then the stage ends at once
    clock.now += 0.5
    progress(30, 100, "embedding")
    run.refresh_from_db()
    assert run.progress == 0.3
    progress(100, 100, "embedding")
    run.refresh_from_db()
    assert run.progress == 1.0

    # When a new stage begins in the same instant, the page names it
    progress(0, 10, "training")
    run.refresh_from_db()
    assert (run.stage, run.progress) == ("training", 0.0)

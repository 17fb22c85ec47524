"""Tests run Celery eagerly in-process; a browser test's live server runs eager tasks in its own thread."""

from __future__ import annotations

import threading

import pytest


@pytest.mark.django_db
def test_an_eager_result_is_read_while_the_live_server_thread_runs_an_eager_task():
    from celery.result import denied_join_result

    from labeling.tasks import export_files_expire_task

    # Given another thread in the middle of an eager task (Celery.apply runs one inside denied_join_result,
    # which sets a process-wide flag)
    inside, release = threading.Event(), threading.Event()

    def live_server_request() -> None:
        with denied_join_result():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=live_server_request)
    thread.start()
    assert inside.wait(10)
    try:
        # When this test reads an eager task's result the plain way, Then it gets it (no "within a task" refusal)
        assert export_files_expire_task.delay().get()["expired"] == 0
    finally:
        release.set()
        thread.join()

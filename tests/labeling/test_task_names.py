"""Services send tasks by name (labeling/services/dispatch.py): every name sent anywhere in config/, labeling/ and
training/ is a task a worker registers, and is routed to a queue. A renamed or moved task whose senders were not
updated fails here, not at run time with a job that never runs."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SENDERS = {"task_send", "task_send_on_commit", "task_signature"}


def names_sent() -> tuple[dict[str, str], list[str]]:
    """Task name -> where it is sent, for every call of the dispatch helpers in the source; and the calls whose name
    is not a literal (which this test could not check)."""
    sent, unchecked = {}, []
    for app in ("config", "labeling", "training"):
        for path in (ROOT / app).rglob("*.py"):
            if path == ROOT / "labeling" / "services" / "dispatch.py":
                continue  # the helpers themselves
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if func not in SENDERS:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    sent[first.value] = where
                else:
                    unchecked.append(where)
    return sent, unchecked


def test_every_task_name_sent_is_a_registered_and_routed_task():
    # Given the tasks a worker registers (every app's tasks.py and CELERY_IMPORTS)
    from config.celery_app import app

    app.loader.import_default_modules()
    registered = {name for name in app.tasks if not name.startswith("celery.")}

    # When we collect every name the code sends
    sent, unchecked = names_sent()
    assert unchecked == [], "send a task by its literal dotted name"
    assert {"labeling.tasks.import_run_task", "labeling.tasks.dataset_export_task"} <= set(sent)

    # Then each is registered and routed
    assert {name: where for name, where in sent.items() if name not in registered} == {}
    assert {name: where for name, where in sent.items() if name not in settings.CELERY_TASK_ROUTES} == {}

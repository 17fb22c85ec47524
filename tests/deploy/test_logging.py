"""LOG_FORMAT=json: every log record is one JSON object per line with time, level, logger and message."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.logging import JsonFormatter, logging_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_record_renders_as_one_json_object_with_extras_and_the_traceback():
    try:
        raise ValueError("bad pixel")
    except ValueError:
        record = logging.getLogger("labeling.imports").makeRecord(
            "labeling.imports", logging.ERROR, __file__, 1, "import of %s failed", ("cat.png",),
            sys.exc_info(), extra={"project": "alpha", "item_id": 7},
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "labeling.imports"
    assert entry["message"] == "import of cat.png failed"
    assert entry["time"].endswith("+00:00")
    assert entry["project"] == "alpha"
    assert entry["item_id"] == 7
    assert "ValueError: bad pixel" in entry["exc_info"]


def test_log_format_json_env_switches_the_django_logging_config():
    code = (
        "import logging, django; django.setup()\n"
        "logging.getLogger('labelloop.smoke').warning('hello %s', 'world', extra={'user': object()})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": "json"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [ln for ln in out.stderr.splitlines() if "hello" in ln]
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "labelloop.smoke", "hello world")
    assert entry["user"].startswith("<object object")


def test_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config(fmt="xml", level="INFO")

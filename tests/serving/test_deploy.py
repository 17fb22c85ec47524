"""`make demo` and compose run the prediction service: a `predict` line in Procfile.dev, and a `predict` compose
service that can be scaled (no fixed host port) and is started with the same command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_runs_the_prediction_service():
    lines = dict(re.findall(r"^([\w-]+):\s*(.+)$", (ROOT / "Procfile.dev").read_text(), re.M))
    args = shlex.split(lines["predict"])
    assert args[1:3] == ["manage.py", "serve_predictions"]
    assert "--port" in args


def test_compose_predict_service_scales_and_serves_predictions():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    out = subprocess.run([binary, "-f", str(ROOT / "docker" / "compose.yml"), "config"], capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    predict = yaml.safe_load(out.stdout)["services"]["predict"]
    assert predict["command"][:2] == ["manage", "serve_predictions"]
    assert "ports" not in predict  # `--scale predict=N` cannot share one host port
    assert [str(p) for p in predict["expose"]] == ["8001"]
    assert "profiles" not in predict
    assert predict["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"

"""Project-wide guarantees: no stdlib shadowing, web processes never import torch."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_top_level_module_shadows_the_standard_library():
    names = {p.stem for p in ROOT.glob("*.py")} | {
        p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert names, "found no top-level modules at all"
    assert "config" in names
    assert not names & set(sys.stdlib_module_names), f"shadowing: {names & set(sys.stdlib_module_names)}"


def test_web_process_and_tasks_modules_never_import_torch():
    """Load the WSGI app, the URLconf and every tasks module in a fresh interpreter: torch stays out."""
    code = (
        "import os, sys, importlib\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'\n"
        "from config.wsgi import application\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "from config.celery_app import app\napp.loader.import_default_modules()\n"  # as a worker: every tasks.py
        "from django.test import Client\n"
        "Client().get('/accounts/login/')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'timm', 'torchvision'})\n"
        "print('LEAK' if bad else 'CLEAN', bad[:5])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "CLEAN" in out.stdout, out.stdout

"""What each process loads: the web process (WSGI app, URLconf, every tasks module, a page) never imports
onnxruntime or torch; the prediction service never imports torch, even on the path that asks for an export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WEB = """
import os, sys
os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'
from config.wsgi import application
from django.urls import get_resolver
get_resolver().url_patterns
from config.celery_app import app
app.loader.import_default_modules()
from django.test import Client
Client().get('/accounts/login/')
Client().get('/p/nowhere/serving/keys/')
bad = sorted(m for m in sys.modules if m.split('.')[0] in {'onnxruntime', 'torch', 'timm', 'torchvision'})
print('LEAK' if bad else 'CLEAN', bad[:5])
"""

SERVICE = """
import os, sys
os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'
from serving.wsgi_predict import application, registry
import serving.runtime.registry, serving.management.commands.serve_predictions
import training.services.exports  # the auto-export request path
import onnxruntime  # what it does load
bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'timm', 'torchvision'})
print('LEAK' if bad else 'CLEAN', bad[:5])
"""

# `manage.py reclaim_disk` trims old run folders' checkpoints: file names only, no torch to load.
RECLAIM = """
import os, sys, tempfile
from pathlib import Path
root = Path(tempfile.mkdtemp())
os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'
os.environ['LABELLOOP_DATA_ROOT'] = str(root)
import django
django.setup()
import serving.management.commands.reclaim_disk
from training.services.disk import run_folder_trim
out = root / 'projects' / '1' / 'runs' / '1'
(out / 'checkpoint').mkdir(parents=True)
for name in ('model.safetensors', 'config.json', 'round.json'):
    (out / 'checkpoint' / name).write_bytes(b'x' * 10)
freed = run_folder_trim(out_dir=out, checkpoint_dir=out / 'checkpoint')
left = sorted(p.name for p in (out / 'checkpoint').iterdir())
bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'timm', 'torchvision'})
print('LEAK' if bad else 'CLEAN', bad[:5], freed, left)
"""


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_the_web_process_never_imports_onnxruntime_or_torch():
    assert "CLEAN" in run(WEB)


def test_the_prediction_service_never_imports_torch():
    assert "CLEAN" in run(SERVICE)


def test_reclaiming_disk_never_imports_torch():
    out = run(RECLAIM)
    assert "CLEAN" in out
    assert out.split()[-2:] == ["20", "['round.json']"]  # the checkpoint's two files went, nothing else

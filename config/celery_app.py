"""The Celery application; workers run `celery -A config.celery_app worker`.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise: a process started without it never serves
with DEBUG or the development secret key. `make demo` and Procfile.dev set config.settings.local.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("labelloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

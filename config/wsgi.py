"""WSGI entry point (gunicorn config.wsgi).

Production settings unless DJANGO_SETTINGS_MODULE says otherwise: a process started without it never serves
with DEBUG or the development secret key. `make demo` and Procfile.dev set config.settings.local.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()

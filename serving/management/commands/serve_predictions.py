"""manage.py serve_predictions [--host H] [--port P] [--workers N]: the prediction service
(serving/wsgi_predict.py) under gunicorn when it is installed, else a threaded wsgiref server (development)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.core.management.base import BaseCommand

from serving.selectors.keys import PREDICT_DEFAULT_PORT


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("predict: " + (format % args) + "\n")


def gunicorn_binary() -> str | None:
    beside = Path(sys.executable).parent / "gunicorn"  # the venv's, when run with .venv/bin/python
    return str(beside) if beside.is_file() else shutil.which("gunicorn")


class Command(BaseCommand):
    help = "Run the prediction service: POST /v1/projects/<slug>/predict with a project API key (onnxruntime)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=PREDICT_DEFAULT_PORT)
        parser.add_argument("--workers", type=int, default=2, help="processes (gunicorn); each loads every model")
        parser.add_argument("--server", choices=["auto", "gunicorn", "wsgiref"], default="auto")

    def handle(self, *args, **opts) -> None:
        binary = gunicorn_binary() if opts["server"] != "wsgiref" else None
        if binary:
            argv = [binary, "serving.wsgi_predict:application", "--bind", f"{opts['host']}:{opts['port']}",
                    "--workers", str(max(1, opts["workers"])), "--timeout", "60", "--graceful-timeout", "30",
                    "--access-logfile", "-", "--error-logfile", "-", "--no-control-socket"]  # fmt: skip
            self.stdout.write(
                f"prediction service (gunicorn, {opts['workers']} workers) on {opts['host']}:{opts['port']}"
            )
            self.stdout.flush()
            os.execv(binary, argv)  # DJANGO_SETTINGS_MODULE is in the environment (manage.py set it)
        if opts["server"] == "gunicorn":
            self.stderr.write("gunicorn is not installed; use --server wsgiref (development only)")
            sys.exit(2)
        from serving.wsgi_predict import application

        server = make_server(
            opts["host"], opts["port"], application, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.stdout.write(f"prediction service (wsgiref, development) on {opts['host']}:{opts['port']}")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            from serving.wsgi_predict import log_buffer

            log_buffer.flush()

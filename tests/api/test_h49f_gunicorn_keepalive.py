"""A script polling a job every 2 s through one connection (requests.Session) is never cut off: gunicorn keeps an
idle connection open well past common poll intervals, in development (Procfile.dev) and in the container
(docker/entrypoint.sh). Its default, 2 s, closed the connection just as the client reused it (RemoteDisconnected)."""

from __future__ import annotations

import http.client
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
# nginx's upstream keepalive_timeout and cloud load balancers drop idle connections after 60 s: gunicorn must outlast
# them, so that the proxy closes first (else the same race hits the proxy's next request).
PROXY_IDLE_SECONDS = 60

APP = """
def app(environ, start_response):
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def procfile_web_options() -> list[str]:
    """The options Procfile.dev starts gunicorn with (after the program and the app)."""
    line = next(x for x in (ROOT / "Procfile.dev").read_text().splitlines() if x.startswith("web:"))
    program, _app, *options = shlex.split(line.removeprefix("web:"))
    assert program.endswith("gunicorn")
    return options


def option(options: list[str], name: str) -> str | None:
    return options[options.index(name) + 1] if name in options else None


def test_development_and_container_keep_idle_connections_longer_than_a_proxy():
    procfile = option(procfile_web_options(), "--keep-alive")
    assert procfile is not None, "Procfile.dev starts gunicorn with --keep-alive"
    assert int(procfile) > PROXY_IDLE_SECONDS
    entrypoint = re.search(r'--keep-alive "\$\{WEB_KEEPALIVE:-(\d+)\}"', (ROOT / "docker/entrypoint.sh").read_text())
    assert entrypoint, "docker/entrypoint.sh starts gunicorn with --keep-alive ${WEB_KEEPALIVE:-N}"
    assert int(entrypoint.group(1)) == int(procfile)


@pytest.mark.slow  # a 3 s wait and a gunicorn start: over 5 s on a busy machine; the test above runs always
def test_a_connection_idle_for_3_seconds_still_answers(tmp_path):
    # Given gunicorn started with the Procfile's options (a plain WSGI app in place of Django's: what is under test
    # is how gunicorn treats the connection, which the options alone decide)
    (tmp_path / "tiny_app.py").write_text(APP)
    options = procfile_web_options()
    port = free_port()
    options[options.index("--bind") + 1] = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--pythonpath", str(tmp_path), "tiny_app:app", *options],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        def answers() -> bool:
            try:
                connection.request("GET", "/")
                return connection.getresponse().read() == b"ok"
            except OSError:
                connection.close()
                return False

        wait_for(answers, 30, what="gunicorn")
        first = connection.sock.getsockname()

        # When the client waits longer than a 2 s poll interval, then asks again on the same connection
        time.sleep(3)
        connection.request("GET", "/")
        again = connection.getresponse()

        # Then the server answers on that same connection, not closing it under the client
        assert (again.status, again.read()) == (200, b"ok")
        assert connection.sock.getsockname() == first
        connection.close()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

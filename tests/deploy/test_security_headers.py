"""Security headers: every page is served under a Content-Security-Policy that its own markup satisfies (no inline
script, handler or <style>, nothing htmx would have to eval), and X-Forwarded-Proto is believed only behind a proxy
that the settings name (LABELLOOP_BEHIND_PROXY), in Django and in gunicorn as docker/entrypoint.sh starts it."""

import os
import re
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import free_port, wait_for
from tests.factories import page_urls

ROOT = Path(__file__).resolve().parents[2]


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)
EVAL_IN_HTMX = re.compile(r"\bhx-on|hx-trigger=\"[^\"]*\[|hx-va(?:ls|rs)=[\"']js:|javascript:", re.I)


@pytest.mark.django_db
def test_every_page_sends_a_policy_that_refuses_inline_script_and_its_markup_needs_none(client, busy_project):
    project, manager = busy_project
    client.force_login(manager)
    for name, url in page_urls(project).items():
        response = client.get(url)
        assert response.status_code == 200, name
        policy = policy_of(response)
        # An injected <script>alert(1)</script> or onerror= would not run: scripts only from our origin, no eval.
        assert policy.get("script-src") == ["'self'"], (name, policy)
        assert policy.get("default-src") == ["'self'"], name
        assert policy.get("style-src") == ["'self'"], name  # <style> elements: our files only
        assert policy.get("img-src") == ["'self'", "data:", "blob:"], name
        assert policy.get("frame-ancestors") == ["'none'"], name
        assert policy.get("form-action") == ["'self'"], name
        assert policy.get("object-src") == ["'none'"], name
        assert not any("unsafe-eval" in v for values in policy.values() for v in values), name
        html = response.content.decode()
        assert not INLINE_SCRIPT.findall(html), (name, INLINE_SCRIPT.findall(html))
        assert not HANDLER.findall(html), (name, HANDLER.findall(html)[:3])
        assert not STYLE_ELEMENT.findall(html), name
        assert not EVAL_IN_HTMX.findall(html), (name, EVAL_IN_HTMX.findall(html))
        # htmx would otherwise add its own <style> for request indicators, which the policy refuses.
        assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>""" in html, name


@pytest.mark.django_db
def test_login_page_and_error_pages_carry_the_policy_too(client):
    for response in (client.get(reverse("login")), client.get("/no-such-page/")):
        assert policy_of(response).get("script-src") == ["'self'"]
        assert policy_of(response).get("frame-ancestors") == ["'none'"]


# --- X-Forwarded-Proto -------------------------------------------------------------------------------------------


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LABELLOOP_", "CELERY_"))}
    env.pop("DATABASE_URL", None)
    env.pop("FORWARDED_ALLOW_IPS", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        REDIS_URL="redis://127.0.0.1:9/0",
        DJANGO_ALLOWED_HOSTS="labelloop.example.com",
        LABELLOOP_MEDIA_ROOT=str(tmp_path / "media"),
        LABELLOOP_DATA_ROOT=str(tmp_path / "data"),
    )
    env.update(extra)
    return env


CLAIMS_HTTPS = (
    "import django; django.setup()\n"
    "from django.test import RequestFactory\n"
    "request = RequestFactory().get('/', HTTP_X_FORWARDED_PROTO='https', HTTP_HOST='labelloop.example.com')\n"
    "print(request.is_secure())\n"
)


@pytest.mark.parametrize(("behind_proxy", "believed"), [(None, "False"), ("false", "False"), ("true", "True")])
def test_production_believes_x_forwarded_proto_only_behind_a_named_proxy(tmp_path, behind_proxy, believed):
    extra = {} if behind_proxy is None else {"LABELLOOP_BEHIND_PROXY": behind_proxy}
    out = subprocess.run(
        [sys.executable, "-c", CLAIMS_HTTPS], cwd=ROOT, env=production_env(tmp_path, **extra),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == believed


def get(url: str, headers: dict) -> tuple[int, dict]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)
    except OSError:
        return 0, {}


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("behind_proxy", [False, True])
def test_gunicorn_from_the_entrypoint_lets_a_client_claim_https_only_behind_a_proxy(tmp_path, behind_proxy):
    """A client on plain http sends X-Forwarded-Proto: https. Without a proxy it is still redirected to https
    (the claim is ignored by gunicorn and Django alike); behind one, the proxy's header is believed."""
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
    port = free_port()
    env = production_env(
        tmp_path, PATH=f"{venv_bin}:{os.environ['PATH']}", PORT=str(port), WEB_CONCURRENCY="1", WEB_THREADS="1",
        LABELLOOP_DB_WAIT_SECONDS="10", **({"LABELLOOP_BEHIND_PROXY": "true"} if behind_proxy else {}),
    )  # fmt: skip
    log = (tmp_path / "web.log").open("w")
    web = subprocess.Popen(
        [str(ROOT / "docker" / "entrypoint.sh"), "web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    host = {"Host": "labelloop.example.com"}
    try:
        wait_for(lambda: get(base + "/livez", {})[0] in (200, 503), 60, what="gunicorn /livez")
        status, headers = get(base + "/accounts/login/", {**host, "X-Forwarded-Proto": "https"})
        if behind_proxy:
            assert status == 200, (tmp_path / "web.log").read_text()[-2000:]
            assert "Strict-Transport-Security" in headers
        else:
            assert status == 301, (tmp_path / "web.log").read_text()[-2000:]
            assert headers["Location"] == "https://labelloop.example.com/accounts/login/"
            assert "Strict-Transport-Security" not in headers
        # The policy rides on every response of the production stack.
        assert "script-src 'self'" in get(base + "/livez", {})[1].get("Content-Security-Policy", "")
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
        log.close()

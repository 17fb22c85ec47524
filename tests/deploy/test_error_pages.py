"""The demo's settings keep DEBUG off unless asked: a 404 is a plain page in the site's style, never Django's
list of every URL; static files and media are still served (gunicorn with config.settings.local, as `make demo`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Role
from tests.conftest import database_url_for_workers, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
URL_LIST_MARKERS = ("Using the URLconf defined in", "api/projects/", "admin/", "Django tried these URL patterns")


def local_settings(**env: str) -> dict:
    """DEBUG and the static-file flags of config.settings.local in a fresh interpreter with `env`."""
    code = (
        "import json, os\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.local'\n"
        "from django.conf import settings\n"
        "print(json.dumps({'DEBUG': settings.DEBUG, 'FINDERS': settings.WHITENOISE_USE_FINDERS}))\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_settings_keep_debug_off_unless_django_debug_asks_for_it():
    assert local_settings() == {"DEBUG": False, "FINDERS": True}
    assert local_settings(DJANGO_DEBUG="true")["DEBUG"] is True


@pytest.mark.django_db
def test_a_non_member_and_an_unknown_url_get_the_plain_not_found_page(project, member_of, user_factory):
    outsider = Client()
    outsider.force_login(user_factory(username="outsider"))

    for url in (reverse("labeling:project_detail", args=[project.slug]), "/no/such/page/"):
        response = outsider.get(url)

        assert response.status_code == 404, url
        page = response.content.decode()
        assert "<h1>Page not found</h1>" in page
        assert 'class="topbar"' in page  # the site's own layout
        for marker in URL_LIST_MARKERS:
            assert marker not in page, (url, marker)
        assert project.name not in page


@pytest.mark.django_db
def test_a_role_that_may_not_do_something_gets_the_plain_not_allowed_page(project, member_of):
    annotator = Client()
    annotator.force_login(member_of(project, Role.ANNOTATOR))

    response = annotator.get(reverse("labeling:project_settings", args=[project.slug]))

    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in response.content.decode()


def test_the_server_error_page_renders_without_a_request():
    from django.template import loader

    page = loader.get_template("500.html").render()

    assert "Something went wrong" in page
    assert "/static/css/app.css" in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demo_server_with_default_settings_serves_static_and_media_and_hides_its_urls(
    project, item_factory, member_of, user_factory, settings, tmp_path
):
    # Given gunicorn as Procfile.dev runs it, with config.settings.local and no DJANGO_DEBUG, on the test database.
    item = item_factory(project=project)
    member, outsider = Client(), Client()
    member.force_login(member_of(project, Role.ANNOTATOR))
    outsider.force_login(user_factory(username="outsider"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=database_url_for_workers(),
        LABELLOOP_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONPATH=str(ROOT),
    )
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def get(path: str, client: Client | None = None) -> tuple[int, str, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if client is not None:
            request.add_header("Cookie", f"sessionid={client.cookies['sessionid'].value}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()
        except OSError:
            return 0, "", b""

    try:
        wait_for(lambda: get("/livez")[0] == 200, 60, what="gunicorn")

        # Then static files and membership-checked media are served, and 404s list nothing.
        status, kind, body = get("/static/css/app.css")
        assert (status, kind.split(";")[0]) == (200, "text/css")
        assert b".card" in body
        assert get("/static/vendor/htmx.min.js")[0] == 200
        status, kind, body = get(reverse("labeling:item_media", args=[project.slug, item.pk, "thumb"]), member)
        assert status == 200, body[:300]
        assert kind.startswith("image/")
        for path, client in (
            ("/no/such/page/", None),
            (reverse("labeling:project_detail", args=[project.slug]), outsider),
        ):
            status, _, body = get(path, client)
            page = body.decode()
            assert status == 404, path
            assert "<h1>Page not found</h1>" in page
            for marker in URL_LIST_MARKERS:
                assert marker not in page, (path, marker)
    finally:
        os.killpg(server.pid, 15)
        server.wait(20)
        log.close()

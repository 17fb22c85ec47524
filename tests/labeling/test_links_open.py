"""Every link a page shows opens for the person who sees it. Each demo role walks its project's pages through the
test client, following every same-site link it is shown and every part a page fetches (htmx GETs): none may answer
403, 404 or 500 (a link to a page the role may not open is a dead end on screen; stop 37 found the monitoring
page showing reviewers a link to the serving keys page, which answered 403)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from labeling.models import LabelClass, Project
from training.ml.evaluate import evaluate
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

# Links that leave the pages (log out, file downloads, media, the API's own docs) are not walked.
SKIP = re.compile(r"/logout|/download|/media/|/static/|/api/|^mailto:|/admin/")
# Links, and the parts a page fetches itself (htmx GETs: lazy tables, polled progress).
LINK = re.compile(r'(href|hx-get)="([^"]+)"')
MAX_PAGES = 120


@pytest.fixture
def demo(tmp_path):
    call_command("demo_setup", "--dir", str(tmp_path), "--limit", "100")
    project = Project.objects.get(slug="digits")
    classes = list(LabelClass.objects.filter(project=project).order_by("order"))
    y = np.arange(20) % 10
    probs = np.full((20, 10), 0.02)
    probs[np.arange(20), (y + (np.arange(20) % 4 == 0)) % 10] = 0.82
    for number in (1, 2):
        ModelVersion.objects.create(
            project=project, number=number, artifact_path="x", architecture="tf_efficientnet_lite0",
            class_ids=[c.pk for c in classes], metrics=evaluate(probs, y, [c.name for c in classes]),
            label_count=50, active=number == 2,
        )  # fmt: skip
    return project


def walk(client: Client, start: str) -> tuple[int, list[tuple[str, str, int]]]:
    """(pages and parts opened, [(page, link, status)] of those that did not open)."""
    seen, todo, dead = set(), [("", start, False)], []
    while todo and len(seen) < MAX_PAGES:
        origin, url, part = todo.pop(0)
        parsed = urlparse(url)  # one of each kind: ids and numbers aside
        shape = re.sub(r"\d+", "N", f"{parsed.path}?{parsed.query}") + (" (part)" if part else "")
        if shape in seen:
            continue
        seen.add(shape)
        response = client.get(url, follow=True, headers={"HX-Request": "true"} if part else {})
        if response.status_code >= 400:
            dead.append((origin, url, response.status_code))
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for kind, href in LINK.findall(response.content.decode()):
            full = urljoin(url, href.replace("&amp;", "&")).split("#")[0]
            if full.startswith("/") and not full.startswith("//") and not SKIP.search(full):
                todo.append((url, full, kind == "hx-get"))
    return len(seen), dead


@pytest.mark.parametrize(
    ("username", "least"),
    # How many kinds of page each role reaches today (26, 20, 5, 13): far fewer means the walk lost its way.
    [("manager", 22), ("reviewer", 16), ("annotator", 4), ("mlengineer", 11)],
)
def test_every_link_a_role_is_shown_opens(demo, username, least):
    client = Client()
    assert client.login(username=username, password="labelloop-demo")

    pages, dead = walk(client, f"/p/{demo.slug}/")

    assert pages >= least
    assert dead == [], dead


def test_pages_name_an_icon_that_exists(demo):
    # Without one, every page load asks for /favicon.ico and the browser's console shows a 404
    from django.contrib.staticfiles import finders

    client = Client()
    assert client.login(username="annotator", password="labelloop-demo")
    html = client.get(f"/p/{demo.slug}/").content.decode()
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="/static/([^"]+)">', html)
    assert icon, "no icon link"
    assert finders.find(icon.group(1)) is not None

"""Every page and fragment a member can reach, with every query parameter and id in its URL at an extreme, answers
a page or a 4xx, never a server error.

The crawl starts at the project's main pages and follows each same-site link and htmx fragment the pages print,
as a manager and as an annotator, on a project with labels, reviews, a real model version with predictions and
an export job. Then each URL is sent again with each query value replaced (digits of another script, past 2^63,
signs, text, a long string, a list), each numeric path segment replaced, and each query parameter the pages use
added with a bad value. The API has its own fuzz run (tests/api/test_fuzz_extremes.py); this is the pages'.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest

from labeling.models import JobKind, Role
from labeling.services.annotations import annotation_create
from labeling.services.jobs import job_create
from tests.exports.models import make_model_version
from tests.factories import page_urls

pytestmark = pytest.mark.django_db

LINK = re.compile(r"""\b(?:href|hx-get|data-url|data-src)\s*=\s*["']([^"']+)["']""")
# The API has its own fuzz run; files are bytes, not pages.
NOT_PAGES = re.compile(r"^/api/|/(logout|admin|media|static)/|/download|\.(png|jpe?g|webp|zip|csv|jsonl|onnx|pt)$")
# "²" passes str.isdigit and int() refuses it; 2^63 is past every id; PostgreSQL refuses a NUL in any string.
BAD_VALUES = ["²", "1,²", str(2**63), "-1", "0", "abc", "1.5", "a" * 2000, "\x00"]
ROOT = Path(__file__).resolve().parents[2]
# Every query parameter a page view reads, from the views' own source, so a new one is fuzzed from the day it lands.
PARAMS_THE_PAGES_READ = sorted(
    {
        name
        for views in ("labeling/views", "training/views", "serving/views")
        for source in (ROOT / views).glob("*.py")
        for name in re.findall(r"""GET(?:\.get\(|\[)["'](\w+)["']""", source.read_text())
    }
)


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(name="Street signs", review_sample_rate=1.0, holdout_fraction=0.0)
    classes = [
        label_class_factory(project=project, name=name, hotkey=str(i + 1), order=i)
        for i, name in enumerate(["stop", "yield", "speed/30", "speed/50"])
    ]
    manager = member_of(project, Role.MANAGER, "maria")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    items = [item_factory(project=project, priority=100 - i) for i in range(10)]
    for i, item in enumerate(items[:5]):
        annotation_create(item=item, user=annotator, class_ids=[classes[i % 2].pk])
    make_model_version(project=project, classes=classes, items=items)
    job_create(project=project, kind=JobKind.EXPORT_DATASET, created_by=manager, params={"format": "csv"})
    return project, manager, annotator


def _links(url: str, html: str) -> list[str]:
    out = []
    for raw in LINK.findall(html):
        target = urljoin(url, unescape(raw)).split("#")[0]
        parts = urlsplit(target)
        if parts.scheme in ("", "http") and parts.netloc in ("", "testserver") and not NOT_PAGES.search(parts.path):
            out.append(urlunsplit(("", "", parts.path, parts.query, "")))
    return out


def _shape(url: str) -> str:
    parts = urlsplit(url)
    return re.sub(r"\d+", "N", parts.path) + "?" + ",".join(sorted({k for k, _ in parse_qsl(parts.query)}))


def crawl(client, starts: list[str], limit: int = 200) -> list[str]:
    """One URL of each shape (path with ids as N, and its query parameter names) reachable from `starts`."""
    seen, found, todo = set(), [], list(starts)
    while todo and len(found) < limit:
        url = todo.pop(0)
        if _shape(url) in seen:
            continue
        seen.add(_shape(url))
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        found.append(url)
        if "text/html" in response.headers.get("Content-Type", ""):
            todo += _links(url, response.content.decode())
    return found


def variants(url: str):
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    for i, (name, _) in enumerate(query):
        for bad in BAD_VALUES:
            changed = [*query[:i], (name, bad), *query[i + 1 :]]
            yield urlunsplit(parts._replace(query=urlencode(changed)))
    for match in re.finditer(r"/(\d+)(?=/)", parts.path):
        for bad in ("0", str(2**63), "9" * 30):
            yield urlunsplit(parts._replace(path=parts.path[: match.start(1)] + bad + parts.path[match.end(1) :]))
    for name in PARAMS_THE_PAGES_READ:
        for bad in ("²", str(2**63), "\x00"):
            yield urlunsplit(parts._replace(query=urlencode([*query, (name, bad)])))


@pytest.mark.parametrize("role", ["manager", "annotator"])
def test_no_page_or_fragment_answers_a_server_error_to_extreme_ids_or_parameters(client, world, role):
    # given: a member of a project where every page has something to show
    project, manager, annotator = world
    client.force_login(manager if role == "manager" else annotator)
    client.raise_request_exception = False  # collect every failure, then report them together
    # when: they follow every link and fragment from the main pages
    urls = crawl(client, list(page_urls(project).values()))
    # then: the crawl reached the pages with ids and parameters in their URLs (the heatmap fragment among them)
    assert {"ahead", "job", "after", "days", "v"} <= set(PARAMS_THE_PAGES_READ), PARAMS_THE_PAGES_READ
    shapes = {_shape(u) for u in urls}
    assert any("/explain/" in s and "ahead" in s for s in shapes), shapes
    assert len(urls) >= (20 if role == "manager" else 5), shapes
    # when: each is sent with each id and parameter at an extreme
    failures = []
    for url in urls:
        for variant in variants(url):
            status = client.get(variant).status_code
            if status >= 500:
                failures.append((status, variant[:200]))
    # then: a page or a 4xx, never a server error
    assert not failures, failures


def _state(project) -> tuple:
    from labeling.models import Annotation, Item, Review, ReviewTask

    return (
        Annotation.objects.filter(item__project=project).count(),
        Review.objects.filter(annotation__item__project=project).count(),
        ReviewTask.objects.filter(project=project, done=False).count(),
        sorted(Item.objects.filter(project=project, is_gold=True).values_list("pk", flat=True)),
        sorted(Item.objects.filter(project=project).values_list("pk", "state", "annotation_count")),
    )


@pytest.mark.parametrize("bad", ["²", str(2**63), "9" * 30, "0", "-3", "abc", "\x00", ""])
def test_a_crafted_id_in_a_form_gets_a_clear_refusal_and_changes_nothing(client, world, bad):
    # given: a manager on a project with labels, review tasks and an unlabeled item in their queue
    from django.urls import reverse

    from labeling.models import Item, LabelClass, ReviewTask

    project, manager, _ = world
    client.force_login(manager)
    client.raise_request_exception = False
    task = ReviewTask.objects.filter(project=project, done=False).first()
    item = Item.objects.filter(project=project, annotation_count=0).first()
    stop = LabelClass.objects.get(project=project, name="stop")
    before = _state(project)
    forms = [
        # grid mode: "label selected as stop" with a crafted image id among real ones
        (reverse("labeling:grid_apply", args=[project.slug]), {"class_id": stop.pk, "item_ids": [item.pk, bad]}),
        # the labeling page's key: a crafted class id
        (reverse("labeling:label_submit", args=[project.slug, item.pk]), {"class_ids": [bad]}),
        # a reviewer's correction to a crafted class
        (reverse("labeling:review_verdict", args=[project.slug, task.pk]), {"verdict": "correct", "class_ids": [bad]}),
        # making an item gold with a crafted answer class
        (reverse("labeling:item_gold", args=[project.slug, item.pk]), {"class_ids": [bad]}),
    ]
    for url, data in forms:
        # when: the form is posted
        response = client.post(url, data, follow=True)
        # then: a refusal the user can read (a 404 or the page with the reason), never a server error
        assert response.status_code in (200, 400, 404), (url, response.status_code)
        if response.status_code == 200:
            assert re.search(r"Unknown class id|Select at least one|No such item", response.content.decode()), url
    # and nothing changed
    assert _state(project) == before

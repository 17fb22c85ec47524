"""The labeling page's requests for bench/labeling_latency.py (`--via page`): what the browser sends per keypress.

Recorded from the page itself (headless Chromium, page.on("request"), with gunicorn's access log to tell what reached
the server from what the browser's cache answered). One keypress on the page (templates/labeling/label.html,
static/js/label.js) sends:

- POST /p/<slug>/label/<item>/ as htmx sends it (HX-Request, HX-Target: item-card, HX-Trigger: label-form,
  HX-Current-URL, X-CSRFToken from the body's hx-headers, X-Class-List: the key of the class list the page shows,
  Origin) with the card form's fields (csrfmiddlewaretoken, ms, shown_at, client_now, class_ids). The answer is
  the next card (the `item-card` partial): the label is saved and the next image claimed in this one request.
- GET of the thumbnail and the original of each image the new card names that the browser has not fetched yet:
  the card's own image and its two prefetch links (<link rel="prefetch" class="prefetch">, preloaded by label.js).
  Media URLs carry `?v=` and are cached as immutable, so in steady state that is the one image newly prefetched.

Without a model there is no suggestion to fetch and no heatmap (its hx-get exists only when the card suggests).
The labeling page itself is loaded once per client with the images it names, before the steps are timed.
"""

from __future__ import annotations

import html
import http.client
import re
import time
from http.cookies import SimpleCookie

CARD = re.compile(r'<section id="item-card"(.*?)>', re.S)
ATTR = r'{}="([^"]*)"'
LABEL_FORM = re.compile(r'<form id="label-form"[^>]*\saction="([^"]+)"(.*?)</form>', re.S)
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_HEADER = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')
CLASS_LIST = re.compile(r'id="class-list" data-key="([^"]+)"')
IMAGE = re.compile(r'<img id="item-image"[^>]*>', re.S)
PREFETCH = re.compile(r'<link rel="prefetch"[^>]*class="prefetch"[^>]*>', re.S)


def _attr(tag: str, name: str) -> str:
    found = re.search(ATTR.format(re.escape(name)), tag)
    return html.unescape(found.group(1)) if found else ""


def parse_card(body: str) -> dict:
    """What the page reads from a card: its item ("" when nothing is left), the label form, the image URLs."""
    card = CARD.search(body)
    if card is None:
        raise RuntimeError(f"no card in the answer: {body[:200]!r}")
    out = {"item": _attr(card.group(1), "data-item"), "action": "", "csrf": "", "list_key": "", "images": []}
    form = LABEL_FORM.search(body)
    if form:
        out["action"] = html.unescape(form.group(1))
        field = CSRF_FIELD.search(form.group(2))
        out["csrf"] = field.group(1) if field else ""
    key = CLASS_LIST.search(body)
    out["list_key"] = key.group(1) if key else ""
    image = IMAGE.search(body)
    if image:
        out["images"] += [_attr(image.group(0), "src"), _attr(image.group(0), "data-original")]
    for link in PREFETCH.findall(body):
        out["images"] += [_attr(link, "href"), _attr(link, "data-original")]
    out["images"] = [u for u in out["images"] if u]
    return out


class PageClient:
    """One annotator's browser tab: one keep-alive connection, its cookies, the images its cache holds."""

    def __init__(self, port: int, slug: str, session: str) -> None:
        self.port, self.slug = port, slug
        self.origin = f"http://127.0.0.1:{port}"
        self.cookies = {"sessionid": session}
        self.cached: set[str] = set()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.header_token = ""
        self.list_key = ""
        self.card: dict = {}
        self.shown_at = 0.0

    def request(self, method: str, url: str, body: bytes | None = None, extra: dict | None = None):
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, url, body=body, headers={"Cookie": cookie, **(extra or {})})
        response = self.conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, response.read()

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def fetch_images(self, urls: list[str]) -> int:
        """GET the images the browser has not fetched yet (the rest come from its cache); returns how many."""
        fetched = 0
        for url in urls:
            if url in self.cached:
                continue
            status, body = self.request("GET", url)
            if status != 200 or not body.startswith(b"\x89PNG"):
                raise RuntimeError(f"image {status} {url}")
            self.cached.add(url)
            fetched += 1
        return fetched

    def load(self) -> None:
        """The labeling page, as a browser opens it (and the images it names)."""
        status, body = self.request("GET", f"/p/{self.slug}/label/")
        if status != 200:
            raise RuntimeError(f"page {status} {body[:200]!r}")
        text = body.decode()
        token = CSRF_HEADER.search(text)
        self.header_token = token.group(1) if token else ""
        self.take(parse_card(text))
        self.fetch_images(self.card["images"])

    def take(self, card: dict) -> None:
        self.card = card
        self.shown_at = time.time() * 1000
        if card["list_key"]:
            self.list_key = card["list_key"]

    def post_label(self, class_id: int) -> tuple[int, str]:
        """The keypress's htmx post: the label, answered by the next card (its image shown when the card came)."""
        now = time.time() * 1000
        form = {
            "csrfmiddlewaretoken": self.card["csrf"],
            "ms": str(round(now - self.shown_at)),
            "shown_at": str(round(self.shown_at)),
            "client_now": str(round(now)),
            "class_ids": str(class_id),
        }
        body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "HX-Request": "true",
            "HX-Target": "item-card",
            "HX-Trigger": "label-form",
            "HX-Current-URL": f"{self.origin}/p/{self.slug}/label/",
            "X-CSRFToken": self.header_token,
            "X-Class-List": self.list_key,
            "Origin": self.origin,
        }
        status, answer = self.request("POST", self.card["action"], body, headers)
        return status, answer.decode(errors="replace")


def page_loop(args: tuple) -> dict:
    """One simulated annotator on the labeling page: `steps` keypresses, each a label post and the images it brings.

    Same shape as labeling_latency.client_loop's result: "submit" is the label post that answers the next card
    (the page's server step), "image" the image requests of the step together, "step" all of one keypress;
    "next" stays empty (the post brings the next card). "requests" counts the requests of each step."""
    port, slug, cred, class_ids, steps, start_at = args
    out = {"step": [], "next": [], "image": [], "submit": [], "errors": 0, "error_samples": [], "labeled": []}
    out["requests"], out["prefetched"] = [], []  # prefetched: the new card's image was fetched by an earlier card
    client = PageClient(port, slug, cred["session"])
    loaded = False
    try:
        client.load()  # before the clock starts: a page is loaded once, then labeled from
        loaded = True
    except Exception as exc:
        out["errors"] += 1
        out["error_samples"].append(repr(exc)[:300])
        client.reconnect()
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.perf_counter()
    for _ in range(steps):
        try:
            if not loaded:
                client.load()
                loaded = True
            item = client.card["item"]
            if not item:
                break
            t0 = time.perf_counter()
            status, body = client.post_label(class_ids[int(item) % len(class_ids)])
            t1 = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"label {status} {body[:300]!r}")
            card = parse_card(body)
            if card["item"] == item:
                raise RuntimeError(f"label of {item} answered the same card")
            prefetched = bool(card["images"]) and card["images"][0] in client.cached
            client.take(card)
            fetched = client.fetch_images(card["images"])
            t2 = time.perf_counter()
        except Exception as exc:
            out["errors"] += 1
            if len(out["error_samples"]) < 3:
                out["error_samples"].append(repr(exc)[:300])
            client.reconnect()
            loaded = False  # reload the page, as an annotator would
            continue
        out["submit"].append((t1 - t0) * 1000)
        out["image"].append((t2 - t1) * 1000)
        out["step"].append((t2 - t0) * 1000)
        out["requests"].append(1 + fetched)
        out["prefetched"].append(prefetched)
        out["labeled"].append(int(item))
    out["elapsed"] = time.perf_counter() - started
    client.conn.close()
    return out


def step_extras(outs: list[dict]) -> dict:
    """requests_per_step: mean requests per measured step, the API's three (next, image, annotation) or the page's
    post and the images its card brings. Page runs add prefetch_hit_rate: the share of cards whose image the page
    had prefetched with an earlier card (the browser shows it at once; otherwise it waits for the thumbnail)."""
    counts = [n for o in outs for n in o.get("requests", [3] * len(o["labeled"]))]
    extras = {"requests_per_step": round(sum(counts) / len(counts), 2) if counts else None}
    hits = [h for o in outs for h in o.get("prefetched", [])]
    if hits:
        extras["prefetch_hit_rate"] = round(sum(hits) / len(hits), 2)
    return extras

"""Status icons render in every browser: the heatmap's "Computing" pill shows a CSS ring, not the ⏳ emoji that a
browser without an emoji font (headless Chromium, many Linux desktops) draws as an empty box; no page uses an emoji as
an icon."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.training.explain_helpers import explained_project

pytestmark = pytest.mark.django_db

# Characters drawn as emoji by default (Unicode's Emoji_Presentation), which need an emoji font: the ranges that hold
# them in the Basic Multilingual Plane, every pictograph above it, and the selector that asks for the emoji form.
EMOJI = [
    (0x231A, 0x231B), (0x23E9, 0x23EC), (0x23F0, 0x23F0), (0x23F3, 0x23F3), (0x25FD, 0x25FE), (0x2614, 0x2615),
    (0x2648, 0x2653), (0x267F, 0x267F), (0x2693, 0x2693), (0x26A1, 0x26A1), (0x26AA, 0x26AB), (0x26BD, 0x26BE),
    (0x26C4, 0x26C5), (0x26CE, 0x26CE), (0x26D4, 0x26D4), (0x26EA, 0x26EA), (0x26F2, 0x26F3), (0x26F5, 0x26F5),
    (0x26FA, 0x26FA), (0x26FD, 0x26FD), (0x2705, 0x2705), (0x270A, 0x270B), (0x2728, 0x2728), (0x274C, 0x274C),
    (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757), (0x2795, 0x2797), (0x27B0, 0x27B0), (0x27BF, 0x27BF),
    (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55), (0xFE0F, 0xFE0F), (0x1F000, 0x1FAFF),
]  # fmt: skip


def emoji_in(text: str) -> list[str]:
    return [ch for ch in text if any(low <= ord(ch) <= high for low, high in EMOJI)]


def test_the_pending_heatmap_pill_shows_a_ring_not_an_emoji(project_factory, label_class_factory, item_factory,
                                                             member_of, client):  # fmt: skip
    # Given an annotator and an item whose heatmap is not computed yet (the task is queued, not run)
    project, classes, items, _version, annotator, _ = explained_project(
        project_factory, label_class_factory, item_factory, member_of
    )
    client.force_login(annotator)

    # When the page asks for it
    body = client.get(reverse("training:explanation", args=[project.slug, items[0].pk, classes[1].pk])).content
    body = body.decode()

    # Then the pill says so beside a ring drawn by CSS, and holds no emoji
    assert "Computing the heatmap of dog" in body
    assert 'class="explain-spinner" aria-hidden="true"' in body
    assert emoji_in(body) == []


def test_no_template_script_or_stylesheet_uses_an_emoji():
    root = Path(settings.BASE_DIR)
    found = {
        str(path.relative_to(root)): emoji_in(path.read_text(encoding="utf-8"))
        for folder in ("templates", "static/js", "static/css")
        for path in sorted((root / folder).rglob("*"))
        if path.suffix in (".html", ".js", ".css", ".txt") and path.is_file()
    }
    assert {name: chars for name, chars in found.items() if chars} == {}

"""The settings page shows the keys an annotator presses for each class: in a taxonomy the labeling page numbers every
level on its own, so the stored hotkeys (handed out over the whole tree) were not the keys that worked."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import Role
from labeling.services.projects import label_class_archive, label_class_create

pytestmark = pytest.mark.django_db


def _settings_keys(client, project) -> dict[str, str]:
    html = client.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    rows = re.findall(r'<tr id="class-\d+"[^>]*><td>([^<]*)</td><td class="label-keys">(.*?)</td>', html, re.S)
    return {path: re.sub(r"<[^>]+>", "", keys) for path, keys in rows}


def _labeling_keys(client, project) -> dict[str, str]:
    """Display path -> the key the labeling page's button for the class answers to (among its siblings)."""
    html = client.get(reverse("labeling:label", args=[project.slug])).content.decode()
    return {path: key for key, path in re.findall(r'data-key="([^"]*)"[^>]*data-path="([^"]*)"', html)}


def test_a_taxonomy_shows_each_levels_keys_as_the_labeling_page_uses_them(project, member_of, item_factory, client):
    # Given parity / digit: "even" holds zero, two, four; "odd" holds one, three; "four" is archived
    even = label_class_create(project=project, name="even")
    odd = label_class_create(project=project, name="odd")
    for name in ("zero", "two", "four"):
        label_class_create(project=project, name=name, parent=even)
    for name in ("one", "three"):
        label_class_create(project=project, name=name, parent=odd)
    label_class_archive(project=project, class_id=project.classes.get(name="four").pk)
    item_factory(project=project)
    client.force_login(member_of(project, Role.MANAGER))

    keys = _settings_keys(client, project)

    # Then "odd / three" is 2 then 2 (its stored hotkey is 7), and the archived class has no key
    assert keys["odd / three"] == "2 → 2"
    assert keys["even / two"] == "1 → 2"
    assert keys["even"] == "1"
    assert keys["even / four"] == "archived"
    # ... the same keys the labeling page answers to, level by level
    labeling = _labeling_keys(client, project)
    for path, sequence in keys.items():
        if sequence != "archived":
            assert sequence.split(" → ")[-1] == labeling[path], path


def test_a_flat_project_shows_the_managers_own_hotkeys(project, member_of, item_factory, client):
    label_class_create(project=project, name="cat", hotkey="q")
    label_class_create(project=project, name="dog")
    item_factory(project=project)
    client.force_login(member_of(project, Role.MANAGER))
    assert _settings_keys(client, project) == {"cat": "q", "dog": "1"}

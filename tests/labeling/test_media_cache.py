"""Images are linked by URLs that name their content, so the browser may keep them for a day: an item id alone
names other bytes after a database is created afresh, and the labeling page showed the old image for the new item."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from labeling.models import Item, Role
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeling(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="birds", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    items = [item_factory(project=project, priority=p) for p in (0.3, 0.2, 0.1)]
    client = Client()
    client.force_login(member_of(project, Role.ANNOTATOR, "ann"))
    return project, items, client


def _page_urls(client, project) -> list[str]:
    html = client.get(reverse("labeling:label", args=[project.slug])).content.decode()
    return [part.split('"', 1)[0] for part in html.split(f'"/p/{project.slug}/media/')[1:]]


def test_the_label_page_links_each_image_by_its_content_and_the_browser_keeps_it(labeling):
    project, items, client = labeling

    urls = _page_urls(client, project)

    # The card's thumbnail and original and the prefetched next items all carry the start of their sha256
    for item, kinds in ((items[0], ("thumb", "original")), (items[1], ("thumb", "original"))):
        for kind in kinds:
            assert f"{item.pk}/{kind}/?v={item.sha256[:16]}" in urls, urls
    response = client.get(f"/p/{project.slug}/media/{items[0].pk}/thumb/?v={items[0].sha256[:16]}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, max-age=86400, immutable"


def test_an_item_made_again_with_an_old_id_gets_a_new_url_and_the_old_url_is_refused(labeling):
    project, items, client = labeling
    old = items[0]
    old_url = f"/p/{project.slug}/media/{old.pk}/thumb/?v={old.sha256[:16]}"
    assert client.get(old_url).status_code == 200

    # When a database created afresh gives a different image the same id
    data = png_bytes(987654)
    Item.objects.filter(pk=old.pk).delete()
    new = Item(pk=old.pk, project=project, original_name="new.png", width=32, height=32, format="PNG",
               sha256=hashlib.sha256(data).hexdigest(), priority=0.9)  # fmt: skip
    new.file.save("new.png", ContentFile(data), save=False)
    new.thumbnail.save("new-thumb.png", ContentFile(data), save=False)
    new.save()

    # Then the page links it under another URL (a browser's cached copy of the old one is never used for it),
    # and the old URL no longer answers with the new bytes
    assert f"{new.pk}/thumb/?v={new.sha256[:16]}" in _page_urls(client, project)
    assert new.sha256[:16] != old.sha256[:16]
    assert client.get(old_url).status_code == 404


def test_a_url_without_the_content_is_revalidated_every_time(labeling):
    project, items, client = labeling
    bare = reverse("labeling:item_media", args=[project.slug, items[0].pk, "original"])

    first = client.get(bare)
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, no-cache"
    again = client.get(bare, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert client.get(bare + "?v=" + "0" * 16).status_code == 404

"""Labeling page, grid and the queue API: what a user sees and who may do what.

(The dashboard's figures moved to the project overview: tests/labeling/test_settings_page.py.)
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.api.tokens import token_replace
from labeling.models import Annotation, Item, ItemState, LabelClass, ResolvedLabel, Role, TaskType
from labeling.services.projects import label_class_create, label_classes_from_paths
from tests.factories import bulk_items, taxonomy_paths

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="birds", holdout_fraction=0.0, instructions="Look at the <b>beak</b>.")
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    dog = label_class_factory(project=project, name="dog", hotkey="2")
    items = [item_factory(project=project, priority=p) for p in (0.3, 0.2, 0.1)]
    other = project_factory(slug="other")
    other_item = item_factory(project=other)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    client = Client()
    client.force_login(annotator)
    return {"project": project, "cat": cat, "dog": dog, "items": items, "other": other, "other_item": other_item,
            "annotator": annotator, "client": client}  # fmt: skip


def test_label_page_shows_the_top_item_with_hotkeys_and_escaped_instructions(world):
    response = world["client"].get(reverse("labeling:label", args=["birds"]))
    html = response.content.decode()
    assert response.status_code == 200
    top = world["items"][0]
    assert reverse("labeling:item_media", args=["birds", top.pk, "thumb"]) in html
    assert f'data-item="{top.pk}"' in html
    assert "<kbd>1</kbd>" in html
    assert "&lt;b&gt;beak&lt;/b&gt;" in html
    # The next candidates' images are prefetched.
    assert 'rel="prefetch"' in html
    assert reverse("labeling:item_media", args=["birds", world["items"][1].pk, "thumb"]) in html


def test_submit_via_htmx_returns_the_next_card(world):
    client, first, second = world["client"], world["items"][0], world["items"][1]
    client.get(reverse("labeling:label", args=["birds"]))
    response = client.post(
        reverse("labeling:label_submit", args=["birds", first.pk]), {"class_ids": world["cat"].pk, "ms": "1500"}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the partial only
    assert f'data-item="{second.pk}"' in html
    annotation = Annotation.objects.get(item=first)
    assert annotation.seconds_spent == 1.5
    assert Item.objects.get(pk=first.pk).state == ItemState.LABELED


def test_conflict_is_409_with_a_message_and_nothing_changes(world, member_of):
    client, first = world["client"], world["items"][0]
    rival = member_of(world["project"])
    other_client = Client()
    other_client.force_login(rival)
    other_client.get(reverse("labeling:label", args=["birds"]))  # rival holds the lease on the top item
    response = client.post(reverse("labeling:label_submit", args=["birds", first.pk]), {"class_ids": world["cat"].pk},
                           **HTMX)  # fmt: skip
    assert response.status_code == 409
    assert "Another annotator" in response.content.decode()
    assert not Annotation.objects.filter(user=world["annotator"]).exists()


def test_a_class_archived_while_the_page_was_open_is_named_and_the_card_offers_the_others(world):
    # The manager archives "cat" while the annotator's page still shows it; the annotator presses its key
    from labeling.services.projects import label_class_archive

    label_class_archive(project=world["project"], class_id=world["cat"].pk)
    first = world["items"][0]
    response = world["client"].post(
        reverse("labeling:label_submit", args=["birds", first.pk]), {"class_ids": world["cat"].pk}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Not saved: “cat” was archived by a manager" in html
    assert f'data-item="{first.pk}"' in html  # the same image, to label with a class that is still there
    assert "<kbd>2</kbd>" in html
    assert "<kbd>1</kbd>" not in html
    assert Annotation.objects.count() == 0


def test_bad_class_is_400_and_nothing_changes(world, label_class_factory):
    foreign = label_class_factory(project=world["other"], name="x")
    first = world["items"][0]
    response = world["client"].post(
        reverse("labeling:label_submit", args=["birds", first.pk]), {"class_ids": foreign.pk}, **HTMX
    )
    assert response.status_code == 400
    assert f"Unknown class id(s) for this project: [{foreign.pk}]" in response.content.decode()
    assert Annotation.objects.count() == 0


def test_skip_and_undo_through_the_page(world):
    client, first = world["client"], world["items"][0]
    client.get(reverse("labeling:label", args=["birds"]))
    client.post(reverse("labeling:label_skip", args=["birds", first.pk]), {"ms": "500"}, **HTMX)
    assert Annotation.objects.get(item=first).skipped
    response = client.post(reverse("labeling:label_undo", args=["birds"]), **HTMX)
    assert f'data-item="{first.pk}"' in response.content.decode()
    response = client.post(reverse("labeling:label_undo", args=["birds"]), **HTMX)
    assert response.status_code == 409
    assert "Nothing to undo" in response.content.decode()


def test_other_projects_items_are_404_and_anonymous_goes_to_login(world):
    client, other_item, first = world["client"], world["other_item"], world["items"][0]
    assert client.get(reverse("labeling:label", args=["other"])).status_code == 404
    assert client.get(reverse("labeling:grid", args=["other"])).status_code == 404
    # Another project's item through this project's URL.
    url = reverse("labeling:label_submit", args=["birds", other_item.pk])
    assert client.post(url, {"class_ids": world["cat"].pk}).status_code == 404
    assert client.post(reverse("labeling:label_skip", args=["birds", other_item.pk])).status_code == 404
    grid_url = reverse("labeling:grid_apply", args=["birds"])
    response = client.post(grid_url, {"item_ids": [first.pk, other_item.pk], "class_id": world["cat"].pk})
    assert response.status_code == 404
    assert Annotation.objects.count() == 0
    anonymous = Client().get(reverse("labeling:label", args=["birds"]))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))


def test_grid_labels_selected_items_as_ordinary_annotations(world):
    client, items, dog = world["client"], world["items"], world["dog"]
    html = client.get(reverse("labeling:grid", args=["birds"])).content.decode()
    for item in items:
        assert f'name="item_ids" value="{item.pk}"' in html
    response = client.post(
        reverse("labeling:grid_apply", args=["birds"]),
        {"item_ids": [items[0].pk, items[2].pk], "class_id": dog.pk, "action": "label"},
    )
    assert response.status_code == 302
    assert set(ResolvedLabel.objects.values_list("item_id", flat=True)) == {items[0].pk, items[2].pk}
    assert Annotation.objects.filter(user=world["annotator"], classes=dog).count() == 2
    html = client.get(reverse("labeling:grid", args=["birds"])).content.decode()
    assert f'name="item_ids" value="{items[0].pk}"' not in html
    assert f'name="item_ids" value="{items[1].pk}"' in html


def test_grid_without_a_class_says_so_and_labels_nothing(world):
    """The page refuses this before sending; a form sent without its script answered 404 "No such class"."""
    client, items = world["client"], world["items"]
    response = client.post(
        reverse("labeling:grid_apply", args=["birds"]), {"item_ids": [items[0].pk], "class_id": ""}, follow=True
    )
    assert response.status_code == 200
    assert "Choose a class first: nothing was labeled." in response.content.decode()
    assert Annotation.objects.count() == 0


def test_grid_by_model_class_and_not_x_hides_without_recording(world):
    prediction = apps.get_model("training", "Prediction")
    version = apps.get_model("training", "ModelVersion").objects.create(
        project=world["project"], number=1, artifact_path="x", architecture="a",
        class_ids=[world["cat"].pk, world["dog"].pk], active=True,
    )  # fmt: skip
    client, items, cat = world["client"], world["items"], world["cat"]
    for item, conf in zip(items, (0.6, 0.9, 0.7), strict=True):
        prediction.objects.create(item=item, model_version=version, probabilities=[conf, 1 - conf],
                                  predicted_class=cat, confidence=conf, uncertainty=1 - conf)  # fmt: skip
    html = client.get(reverse("labeling:grid", args=["birds"]) + f"?class={cat.pk}").content.decode()
    order = [html.index(f'name="item_ids" value="{i.pk}"') for i in (items[1], items[2], items[0])]
    assert order == sorted(order)  # most confident first
    client.post(
        reverse("labeling:grid_apply", args=["birds"]),
        {"item_ids": [items[1].pk], "class_id": cat.pk, "action": "not", "source_class": cat.pk},
    )
    assert Annotation.objects.count() == 0
    html = client.get(reverse("labeling:grid", args=["birds"]) + f"?class={cat.pk}").content.decode()
    assert f'name="item_ids" value="{items[1].pk}"' not in html
    # The label page shows the model's suggestion with its probability.
    html = client.get(reverse("labeling:label", args=["birds"])).content.decode()
    assert "Model suggests" in html
    assert "60%" in html


def test_multi_label_page_uses_checkboxes(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="multi", task_type=TaskType.MULTI)
    a = label_class_factory(project=project, name="sky")
    b = label_class_factory(project=project, name="sea")
    item = item_factory(project=project)
    client = Client()
    client.force_login(member_of(project))
    html = client.get(reverse("labeling:label", args=["multi"])).content.decode()
    assert 'type="checkbox" name="class_ids"' in html
    client.post(reverse("labeling:label_submit", args=["multi", item.pk]), {"class_ids": [a.pk, b.pk]}, **HTMX)
    assert set(ResolvedLabel.objects.get(item=item).classes.values_list("name", flat=True)) == {"sky", "sea"}


def test_a_multi_label_grid_labels_the_selection_with_every_class_chosen(
    project_factory, label_class_factory, item_factory, member_of
):
    # Given a multi-label project whose grid shows three images, two of them sky and sea
    project = project_factory(slug="multi", task_type=TaskType.MULTI)
    sky, sea, boat = (label_class_factory(project=project, name=n) for n in ("sky", "sea", "boat"))
    items = [item_factory(project=project) for _ in range(3)]
    other = label_class_factory(project=project_factory(slug="elsewhere", task_type=TaskType.MULTI), name="sun")
    client = Client()
    client.force_login(member_of(project))
    html = client.get(reverse("labeling:grid", args=["multi"])).content.decode()
    assert '<select name="class_id" id="grid-class" multiple' in html  # one picks every class the images show
    apply = reverse("labeling:grid_apply", args=["multi"])

    # When nothing is chosen, or a class of another project, nothing is recorded
    response = client.post(apply, {"item_ids": [items[0].pk], "action": "label"}, follow=True)
    assert "Choose at least one class" in response.content.decode()
    assert client.post(apply, {"item_ids": [items[0].pk], "class_id": [sky.pk, other.pk]}).status_code == 404
    assert Annotation.objects.count() == 0

    # When the annotator selects two images and chooses sky and sea
    response = client.post(apply, {"item_ids": [items[0].pk, items[1].pk], "class_id": [sky.pk, sea.pk],
                                   "action": "label"}, follow=True)  # fmt: skip

    # Then each is labeled with both, not with one of them alone (which would say "no sea")
    for item in items[:2]:
        assert set(ResolvedLabel.objects.get(item=item).classes.values_list("name", flat=True)) == {"sky", "sea"}
    assert not ResolvedLabel.objects.filter(item=items[2]).exists()
    assert "Labeled 2 images as sky + sea" in response.content.decode()
    assert boat.pk not in set(Annotation.objects.values_list("classes", flat=True))


# --- API ---


@pytest.fixture
def api(world):
    token = token_replace(user=world["annotator"])
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_api_next_annotate_skip_undo(world, api):
    base = "/api/projects/birds"
    first = api.get(f"{base}/next/?prefetch=2").json()
    assert first["item"]["id"] == world["items"][0].pk
    first_item = world["items"][0]
    assert first["item"]["original_url"].endswith(f"/{first_item.pk}/original/?v={first_item.sha256[:16]}")
    assert [p["id"] for p in first["prefetch"]] == [world["items"][1].pk, world["items"][2].pk]
    assert api.get(f"{base}/next/").json()["item"]["id"] == world["items"][0].pk  # same lease
    created = api.post(
        f"{base}/annotations/",
        {"item_id": first["item"]["id"], "class_ids": [world["cat"].pk], "seconds_spent": 2},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["item_state"] == "labeled"
    again = api.post(f"{base}/annotations/", {"item_id": first["item"]["id"], "class_ids": [world["cat"].pk]},
                     content_type="application/json")  # fmt: skip
    assert again.status_code == 409
    second = api.get(f"{base}/next/").json()["item"]["id"]
    assert api.post(f"{base}/items/{second}/skip/", {}, content_type="application/json").status_code == 201
    undone = api.post(f"{base}/undo/")
    assert undone.status_code == 200
    assert undone.json()["item"]["id"] == second
    assert api.get(f"{base}/next/").json()["item"]["id"] == second


def test_api_rejects_bad_input_and_foreign_items(world, api):
    base = "/api/projects/birds"
    bad = api.post(f"{base}/annotations/", {"item_id": world["items"][0].pk, "class_ids": [world["cat"].pk,
                   world["dog"].pk]}, content_type="application/json")  # fmt: skip
    assert bad.status_code == 400
    foreign = api.post(f"{base}/annotations/", {"item_id": world["other_item"].pk, "class_ids": [world["cat"].pk]},
                       content_type="application/json")  # fmt: skip
    assert foreign.status_code == 404
    assert api.get("/api/projects/other/next/").status_code == 404
    assert Client().get(f"{base}/next/").status_code == 401
    assert Annotation.objects.count() == 0


def test_api_next_returns_null_when_done(project_factory, member_of):
    project = project_factory(slug="empty")
    bulk_items(project, 0)
    client = Client()
    client.force_login(member_of(project))
    assert client.get("/api/projects/empty/next/").json()["item"] is None


def test_a_labeling_step_over_the_api_stays_within_its_query_budget(world, api, django_assert_max_num_queries):
    # The hot path's whole cost in statements: it must not creep up as features land (+2: the test's savepoint).
    base = "/api/projects/birds"
    world["project"].review_sample_rate = 0.0
    world["project"].save()
    with django_assert_max_num_queries(8):  # token, member, lease probe, claim, lease write, prediction (+savepoint)
        item = api.get(f"{base}/next/").json()["item"]
    with django_assert_max_num_queries(4):  # session, user, member, item (media URLs use the browser session)
        assert world["client"].get(item["original_url"]).status_code == 200
    with django_assert_max_num_queries(13):  # token, member, lock, check, 2+2 inserts, decide, existing, update
        response = api.post(
            f"{base}/annotations/",
            {"item_id": item["id"], "class_ids": [world["cat"].pk]},
            content_type="application/json",
        )
    assert response.status_code == 201


def test_api_refuses_a_bad_token_and_items_of_other_projects_on_skip(world, api):
    bad = Client(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get("/api/projects/birds/next/").status_code == 401
    assert api.post(f"/api/projects/birds/items/{world['other_item'].pk}/skip/").status_code == 404
    assert api.post("/api/projects/birds/items/999999/skip/").status_code == 404
    world["annotator"].is_active = False
    world["annotator"].save()
    assert api.get("/api/projects/birds/next/").status_code == 401
    assert Annotation.objects.count() == 0


def test_large_originals_stream_and_small_ones_come_whole(world, monkeypatch):
    item = world["items"][0]
    url = reverse("labeling:item_media", args=["birds", item.pk, "original"])
    whole = world["client"].get(url)
    monkeypatch.setattr("labeling.views.media.SMALL_FILE_BYTES", 16)
    streamed = world["client"].get(url)
    assert (whole.streaming, streamed.streaming) == (False, True)
    assert whole.getvalue() == streamed.getvalue() == item.file.open("rb").read()
    assert streamed["Content-Type"] == whole["Content-Type"] == "image/png"


def test_api_next_offers_the_active_models_suggestions_best_first(world, api):
    versions = apps.get_model("training", "ModelVersion")
    old = versions.objects.create(project=world["project"], number=1, artifact_path="x", architecture="a",
                                  class_ids=[world["cat"].pk, world["dog"].pk], active=False)  # fmt: skip
    new = versions.objects.create(project=world["project"], number=2, artifact_path="y", architecture="a",
                                  class_ids=[world["dog"].pk, world["cat"].pk], active=True)  # fmt: skip
    prediction = apps.get_model("training", "Prediction")
    top = world["items"][0]
    for version, probabilities in ((old, [0.9, 0.1]), (new, [0.75, 0.25])):
        prediction.objects.create(item=top, model_version=version, probabilities=probabilities,
                                  predicted_class=world["dog"], confidence=0.75, uncertainty=0.25)  # fmt: skip

    data = api.get("/api/projects/birds/next/").json()

    assert data["item"]["id"] == top.pk
    assert data["suggestions"] == [
        {"class_id": world["dog"].pk, "name": "dog", "probability": 0.75},
        {"class_id": world["cat"].pk, "name": "cat", "probability": 0.25},
    ]
    assert api.get("/api/projects/birds/next/?suggest=0").json()["suggestions"] == []


# --- when the image was shown; keys per taxonomy level ---


def test_label_and_skip_record_when_their_image_was_shown(world):
    client, first, second, third = world["client"], *world["items"]
    client.get(reverse("labeling:label", args=["birds"]))
    shown = timezone.now() - timedelta(seconds=3)
    ms = f"{shown.timestamp() * 1000:.0f}"

    client.post(reverse("labeling:label_submit", args=["birds", first.pk]),
                {"class_ids": world["cat"].pk, "shown_at": ms}, **HTMX)  # fmt: skip
    client.post(reverse("labeling:label_skip", args=["birds", second.pk]), {"shown_at": ms}, **HTMX)
    client.post(reverse("labeling:label_submit", args=["birds", third.pk]),
                {"class_ids": world["dog"].pk, "shown_at": "not a time"}, **HTMX)  # fmt: skip

    stored = dict(Annotation.objects.values_list("item_id", "shown_at"))
    assert abs((stored[first.pk] - shown).total_seconds()) < 0.001
    assert abs((stored[second.pk] - shown).total_seconds()) < 0.001
    assert stored[third.pk] is None  # unreadable: not recorded, the label still counts


def test_a_label_claiming_its_image_is_shown_in_the_future_is_refused(world):
    client, first = world["client"], world["items"][0]
    client.get(reverse("labeling:label", args=["birds"]))
    future = f"{(timezone.now() + timedelta(hours=1)).timestamp() * 1000:.0f}"

    label = client.post(reverse("labeling:label_submit", args=["birds", first.pk]),
                        {"class_ids": world["cat"].pk, "shown_at": future}, **HTMX)  # fmt: skip
    skip = client.post(reverse("labeling:label_skip", args=["birds", first.pk]), {"shown_at": future}, **HTMX)

    assert (label.status_code, skip.status_code) == (400, 400)
    assert f'data-item="{first.pk}"' in skip.content.decode()
    assert Annotation.objects.count() == 0


CLASS_BUTTON = re.compile(r'class="class-btn[^"]*" data-id="(\d+)" data-key="([^"]*)" data-parent="(\d*)"')


def test_every_level_of_a_deep_taxonomy_has_its_own_keys(project_factory, item_factory, member_of):
    project = project_factory(slug="clipart", holdout_fraction=0.0)
    label_classes_from_paths(project=project, paths=taxonomy_paths())
    item_factory(project=project)
    client = Client()
    client.force_login(member_of(project))

    html = client.get(reverse("labeling:label", args=["clipart"])).content.decode()

    buttons = CLASS_BUTTON.findall(html)
    assert len(buttons) == LabelClass.objects.filter(project=project).count() == 150
    levels: dict[str, list[str]] = {}
    for _, key, parent in buttons:
        levels.setdefault(parent, []).append(key)
    assert len(levels[""]) == 22
    for parent, keys in levels.items():
        assert "" not in keys, f"a class under {parent or 'the top level'} has no key"
        assert len(set(keys)) == len(keys), f"two classes under {parent or 'the top level'} share a key"
        assert not set(keys) & set("sz?/ibh")  # the page's own keys
    assert levels[""] == [*"123456789", *"acdefgjklmnop"]  # in taxonomy order
    depth_two = [keys for parent, keys in levels.items() if parent and len(keys) == 2]
    assert all(keys == ["1", "2"] for keys in depth_two)  # each level starts again at 1


def test_a_flat_project_keeps_its_stored_hotkeys_and_the_page_keys_stay_reserved(world, label_class_factory):
    project = world["project"]
    bird = label_class_factory(project=project, name="bird", hotkey="")
    with pytest.raises(ValidationError, match="reserved"):
        label_class_create(project=project, name="bee", hotkey="b")
    owl = label_class_create(project=project, name="owl")

    html = world["client"].get(reverse("labeling:label", args=["birds"])).content.decode()

    keys = {int(i): key for i, key, _ in CLASS_BUTTON.findall(html)}
    assert keys[world["cat"].pk] == "1"
    assert keys[world["dog"].pk] == "2"
    assert owl.hotkey == "3"
    assert keys[owl.pk] == "3"
    assert keys[bird.pk] == "4"  # no stored key: the first free one


def test_shown_time_follows_the_server_clock_when_the_browser_clock_is_off(world):
    # Given a page whose clock runs an hour fast: the image appeared 2.5 s before the key, by that clock
    client, first = world["client"], world["items"][0]
    client.get(reverse("labeling:label", args=["birds"]))
    browser_now = (timezone.now() + timedelta(hours=1)).timestamp() * 1000

    response = client.post(reverse("labeling:label_submit", args=["birds", first.pk]),
                           {"class_ids": world["cat"].pk, "shown_at": f"{browser_now - 2500:.0f}",
                            "client_now": f"{browser_now:.0f}"}, **HTMX)  # fmt: skip

    # Then the label counts, and its image was shown 2.5 s before the server received it
    assert response.status_code == 200
    annotation = Annotation.objects.get(item=first)
    assert abs((annotation.created_at - annotation.shown_at).total_seconds() - 2.5) < 1.0


def test_an_annotator_sees_their_own_skips_in_the_order_they_come_back(world, member_of):
    # Given two skips by the annotator (the first skipped first) and one by a colleague
    client, first, second, third = world["client"], *world["items"]
    client.get(reverse("labeling:label", args=["birds"]))
    client.post(reverse("labeling:label_skip", args=["birds", first.pk]), **HTMX)
    client.post(reverse("labeling:label_skip", args=["birds", second.pk]), **HTMX)
    colleague = Client()
    colleague.force_login(member_of(world["project"], Role.ANNOTATOR, "bob"))
    colleague.get(reverse("labeling:label", args=["birds"]))
    colleague.post(reverse("labeling:label_skip", args=["birds", third.pk]), **HTMX)

    # When the annotator follows the labeling page's "your skips" link
    page = client.get(reverse("labeling:label", args=["birds"])).content.decode()
    assert reverse("labeling:label_skips", args=["birds"]) in page
    html = client.get(reverse("labeling:label_skips", args=["birds"])).content.decode()

    # Then their skips are listed, oldest first, and not the colleague's
    rows = [int(x) for x in re.findall(r'<tr data-item="(\d+)"', html)]
    assert rows == [first.pk, second.pk]
    # An outsider of the project gets 404
    outsider = Client()
    outsider.force_login(member_of(world["other"], Role.ANNOTATOR, "eve"))
    assert outsider.get(reverse("labeling:label_skips", args=["birds"])).status_code == 404


@pytest.mark.parametrize("huge", [2**63, 2**64, 10**30])
def test_ids_past_the_database_range_on_the_labeling_page_are_not_found(world, huge):
    client, first = world["client"], world["items"][0]
    client.get(reverse("labeling:label", args=["birds"]))

    skip = client.post(f"/p/birds/label/{huge}/skip/", **HTMX)
    label = client.post(f"/p/birds/label/{huge}/", {"class_ids": world["cat"].pk}, **HTMX)
    bad_class = client.post(reverse("labeling:label_submit", args=["birds", first.pk]), {"class_ids": huge}, **HTMX)

    assert skip.status_code == 404
    assert label.status_code == 404
    assert bad_class.status_code == 400
    assert Annotation.objects.count() == 0

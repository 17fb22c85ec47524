"""Labeling page words (tester54): why an image comes without the model's suggestion (P10), and an image served again
because only the user's skipped images are left, with the open count in the singular for one (P11)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.urls import reverse

from labeling.models import Annotation, Role, Split
from tests.factories import page_client

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
HOLDOUT_WORDS = "No suggestion: held-out images are labeled without one, so the model's measured accuracy stays fair."
NOT_SCORED_WORDS = "No suggestion yet: the model has not scored this image."
SKIPPED_AGAIN = "Only images you skipped are left: this one again."


@pytest.fixture
def one_image(project_factory, label_class_factory, item_factory, member_of):
    """make(split, model, scored) -> (annotator's page client, project, item): a project with one image."""

    def make(*, split=Split.TRAIN, model=True, scored=False, n_items=1):
        project = project_factory(slug="shapes", holdout_fraction=0.0, preselect_suggestion=True)
        circle = label_class_factory(project=project, name="circle", hotkey="1")
        square = label_class_factory(project=project, name="square", hotkey="2")
        items = [item_factory(project=project, split=split, priority=10 - n) for n in range(n_items)]
        if model:
            version = apps.get_model("training", "ModelVersion").objects.create(
                project=project, number=1, artifact_path="x", architecture="a",
                class_ids=[circle.pk, square.pk], active=True,
            )  # fmt: skip
            if scored:
                apps.get_model("training", "Prediction").objects.create(
                    item=items[0], model_version=version, probabilities=[0.8, 0.2], predicted_class=circle,
                    confidence=0.8, uncertainty=0.2,
                )  # fmt: skip
        client = page_client(member_of(project, Role.ANNOTATOR, "ann"))
        return client, project, items

    return make


def label_page(client) -> str:
    response = client.get(reverse("labeling:label", args=["shapes"]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_held_out_image_says_why_the_model_suggests_nothing(one_image):
    client, _, _ = one_image(split=Split.HOLDOUT)
    html = label_page(client)
    assert "Model suggests" not in html
    assert HOLDOUT_WORDS in html
    assert NOT_SCORED_WORDS not in html


def test_an_image_the_model_has_not_scored_says_so(one_image):
    client, _, _ = one_image(split=Split.TRAIN)
    html = label_page(client)
    assert "Model suggests" not in html
    assert NOT_SCORED_WORDS in html
    assert 'data-suggested="0"' in html  # label.js: Enter on it says there is nothing to accept


def test_no_line_with_a_suggestion_or_without_any_model(one_image):
    client, _, _ = one_image(scored=True)
    html = label_page(client)
    assert "Model suggests" in html
    assert "No suggestion" not in html
    assert 'data-suggested="1"' in html


def test_no_line_before_the_project_has_a_model(one_image):
    client, _, _ = one_image(model=False, split=Split.HOLDOUT)
    assert "No suggestion" not in label_page(client)


def test_skipping_the_last_open_image_says_only_skipped_images_are_left(one_image):
    client, _, items = one_image(model=False)
    html = label_page(client)
    assert "1</b> item still open in this project" in html
    assert "items still open" not in html
    assert SKIPPED_AGAIN not in html

    response = client.post(reverse("labeling:label_skip", args=["shapes", items[0].pk]), **HTMX)
    html = response.content.decode()
    assert f'data-item="{items[0].pk}"' in html  # the same image again ...
    assert f"Skipped. {SKIPPED_AGAIN}" in html  # ... and the page says why
    assert "1</b> item still open in this project" in html
    assert Annotation.objects.filter(skipped=True).count() == 1
    # A reload says it too; undoing the skip makes it an ordinary open image again.
    assert SKIPPED_AGAIN in label_page(client)
    client.post(reverse("labeling:label_undo", args=["shapes"]), **HTMX)
    assert SKIPPED_AGAIN not in label_page(client)


def test_an_image_given_back_by_undo_is_not_called_a_skipped_one(one_image):
    client, project, items = one_image(model=False)
    label_page(client)
    client.post(reverse("labeling:label_skip", args=["shapes", items[0].pk]), **HTMX)
    circle_id = project.classes.get(name="circle").pk
    html = client.post(
        reverse("labeling:label_submit", args=["shapes", items[0].pk]), {"class_ids": circle_id}, **HTMX
    ).content.decode()
    assert "Nothing left for you to label here." in html
    html = client.post(reverse("labeling:label_undo", args=["shapes"]), **HTMX).content.decode()
    assert "Undone: label it again." in html
    assert SKIPPED_AGAIN not in html  # the undo gave it back, not the queue


def test_skipping_with_other_images_open_shows_the_next_one_without_the_hint(one_image):
    client, _, items = one_image(model=False, n_items=2)
    assert "2</b> items still open in this project" in label_page(client)
    html = client.post(reverse("labeling:label_skip", args=["shapes", items[0].pk]), **HTMX).content.decode()
    assert f'data-item="{items[1].pk}"' in html
    assert "Skipped." in html
    assert SKIPPED_AGAIN not in html

"""Review cards are of labeled items, which the model stores no prediction of: the card still shows the active
version's heatmap, of the class the heatmap request names (the label under review when nothing better is known),
captioned with that class; without a heatmap the footer does not advertise `h` and the card says why."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from training.models import Explanation, ExplanationStatus, ModelVersion

pytestmark = pytest.mark.django_db


def test_a_labeled_item_without_a_stored_prediction_shows_the_heatmap_of_its_label(
    explained_zoo, audit_card, client, django_capture_on_commit_callbacks
):
    # Given an audit-sample card of an item labeled "dog" that the active version has no prediction of
    project, classes, items, version, annotator, reviewer = explained_zoo
    item, dog = items[0], classes[1]
    item.predictions.all().delete()
    audit_card(project, item, annotator, dog)
    client.force_login(reviewer)

    # When the reviewer opens the review page
    body = html.unescape(client.get(reverse("labeling:review", args=[project.slug])).content.decode())

    # Then the card carries the heatmap of "dog", captioned, and the footer offers h
    url = reverse("training:explanation", args=[project.slug, item.pk, dog.pk])
    assert f'hx-get="{url}"' in body
    assert f"v{version.number}'s heatmap of dog (the label under review)" in body
    assert 'id="review-h-hint">' in body

    # and the explain view answers for it: a spinner, then the overlay of "dog"
    with django_capture_on_commit_callbacks(execute=True):
        first = client.get(url)
    assert first.status_code == 200
    assert "Computing the heatmap of dog" in first.content.decode()
    done = client.get(url).content.decode()
    row = Explanation.objects.get(item=item)
    assert row.status == ExplanationStatus.DONE
    assert row.class_name == "dog"
    assert reverse("training:explanation_png", args=[project.slug, row.pk]) in done


def test_without_a_model_the_footer_does_not_offer_h_and_the_card_says_why(explained_zoo, audit_card, client):
    # Given a card while the project has no active version
    project, classes, items, _version, annotator, reviewer = explained_zoo
    audit_card(project, items[0], annotator, classes[0])
    ModelVersion.objects.filter(project=project).update(active=False)
    client.force_login(reviewer)

    body = client.get(reverse("labeling:review", args=[project.slug])).content.decode()

    assert 'id="review-explain"' not in body
    assert 'id="review-h-hint" hidden>' in body
    assert "No heatmap: the project has no trained model yet." in body

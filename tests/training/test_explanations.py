"""Heatmaps through the pages: the fragment queues the work once and shows the overlay when the worker is done,
the PNG is served only to the project's members, a failure says so and labeling goes on, the next items are
computed ahead, and the labeling, review, label-error and confusion pages carry them. Celery runs eagerly here."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from labeling.models import Annotation, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.dispatch import BROKER_DOWN
from tests.training.explain_helpers import break_checkpoint, explained_project
from training.models import Explanation, ExplanationStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def zoo(project_factory, label_class_factory, item_factory, member_of):
    return explained_project(project_factory, label_class_factory, item_factory, member_of)


def fragment_url(project, item, cls, **params) -> str:
    url = reverse("training:explanation", args=[project.slug, item.pk, cls.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def test_first_view_shows_a_spinner_that_polls_then_the_overlay(zoo, client, django_capture_on_commit_callbacks):
    # given: an annotator and an item the active model has a prediction of
    project, classes, items, _version, annotator, _ = zoo
    client.force_login(annotator)
    # when: the page asks for the heatmap of "dog" (the task runs after commit: eagerly, in this process)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.get(fragment_url(project, items[0], classes[1]))
    # then: the first answer is a spinner that polls every second
    body = first.content.decode()
    assert first.status_code == 200
    assert "Computing the heatmap of dog" in body
    assert 'hx-trigger="every 1s"' in body
    # when: the poll comes back after the worker is done
    done = client.get(fragment_url(project, items[0], classes[1]))
    # then: the overlay image, no more polling, and its PNG is an RGBA image of the item's display size
    body = done.content.decode()
    row = Explanation.objects.get()
    assert row.status == ExplanationStatus.DONE
    assert row.class_index == 1
    assert row.class_name == "dog"
    assert "hx-trigger" not in body
    png_url = reverse("training:explanation_png", args=[project.slug, row.pk])
    assert f'src="{png_url}"' in body
    answer = client.get(png_url)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content))
    assert image.mode == "RGBA"
    assert image.size == (items[0].width, items[0].height)
    assert 0.0 <= row.probability <= 1.0


def test_second_request_reuses_the_row_and_its_file(zoo, client, django_capture_on_commit_callbacks, monkeypatch):
    # given: a computed heatmap
    project, classes, items, _, annotator, _ = zoo
    client.force_login(annotator)
    sent = []
    import training.services.explanations as service

    real_send = service.task_send
    monkeypatch.setattr(service, "task_send", lambda name, *args: sent.append(args) or real_send(name, *args))
    with django_capture_on_commit_callbacks(execute=True):
        client.get(fragment_url(project, items[0], classes[0]))
    row = Explanation.objects.get()
    # when: the same heatmap is asked for again, twice
    with django_capture_on_commit_callbacks(execute=True):
        client.get(fragment_url(project, items[0], classes[0]))
        client.get(fragment_url(project, items[0], classes[0]))
    # then: one row, one task ever sent, the same file
    again = Explanation.objects.get()
    assert len(sent) == 1
    assert (again.pk, again.png, again.finished_at) == (row.pk, row.png, row.finished_at)


def test_another_projects_heatmap_is_404_and_a_non_member_gets_404(
    zoo, project_factory, label_class_factory, item_factory, member_of, client, django_capture_on_commit_callbacks
):
    # given: two projects with computed heatmaps, and a user of the second one only
    project, classes, items, _, annotator, _ = zoo
    other = explained_project(project_factory, label_class_factory, item_factory, member_of, slug="farm", n=1)
    client.force_login(annotator)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(fragment_url(project, items[0], classes[0]))
    mine = Explanation.objects.get()
    client.force_login(other[4])
    with django_capture_on_commit_callbacks(execute=True):
        client.get(fragment_url(other[0], other[2][0], other[1][0]))
    theirs = Explanation.objects.exclude(pk=mine.pk).get()
    client.force_login(annotator)
    # when / then: this project's URL with the other project's explanation, item or class: 404
    assert client.get(reverse("training:explanation_png", args=[project.slug, theirs.pk])).status_code == 404
    assert client.get(fragment_url(project, other[2][0], classes[0])).status_code == 404
    assert client.get(fragment_url(project, items[0], other[1][0])).status_code == 404
    assert client.get(fragment_url(project, items[0], classes[0], version=99)).status_code == 404
    # and: the other project's own URLs, for a non-member, are 404 as well (as the media view answers)
    assert client.get(reverse("training:explanation_png", args=[other[0].slug, theirs.pk])).status_code == 404
    assert client.get(fragment_url(other[0], other[2][0], other[1][0])).status_code == 404
    # and: nobody signed in is sent to the login page
    client.logout()
    assert client.get(reverse("training:explanation_png", args=[project.slug, mine.pk])).status_code == 302
    assert client.get(reverse("training:explanation_png", args=[project.slug, mine.pk])).status_code == 302
    assert Explanation.objects.count() == 2  # no request of theirs or ours made a row in the wrong project


def test_a_broken_checkpoint_fails_with_the_reason_and_labeling_goes_on(
    zoo, client, django_capture_on_commit_callbacks
):
    # given: the active version's weights are corrupted
    project, classes, _items, version, annotator, _ = zoo
    break_checkpoint(version)
    client.force_login(annotator)
    page = client.get(reverse("labeling:label", args=[project.slug]))
    item = page.context["item"]
    # when: the labeling page's heatmap is computed
    with django_capture_on_commit_callbacks(execute=True):
        client.get(page.context["explain_top"])
    answer = client.get(page.context["explain_top"])
    # then: the fragment says it failed, and why, and stops polling
    body = answer.content.decode()
    assert "Heatmap failed" in body
    assert "hx-trigger" not in body
    row = Explanation.objects.get(item=item)
    assert row.status == ExplanationStatus.FAILED
    assert row.error
    # and: the annotator labels the item as always and gets the next one
    submit = client.post(
        reverse("labeling:label_submit", args=[project.slug, item.pk]), {"class_ids": [classes[0].pk], "ms": "900"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert submit.status_code == 200
    assert Annotation.objects.filter(item=item, user=annotator).exists()
    assert 'data-item="' in submit.content.decode()
    assert f'data-item="{item.pk}"' not in submit.content.decode()


def test_broker_down_fails_the_row_and_asking_again_sends_it(
    zoo, client, django_capture_on_commit_callbacks, monkeypatch
):
    # given: Redis is down
    project, classes, items, _, annotator, _ = zoo
    client.force_login(annotator)
    import training.services.explanations as service

    monkeypatch.setattr(service, "task_send", lambda name, *args: False)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(fragment_url(project, items[0], classes[0]))
    # then: the row ends failed with the broker's reason, so the page shows it instead of polling forever
    assert Explanation.objects.get().error == BROKER_DOWN
    assert "Heatmap failed" in client.get(fragment_url(project, items[0], classes[0], poll=1)).content.decode()
    # when: Redis is back and the page asks again
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.get(fragment_url(project, items[0], classes[0]))
    # then: it is computed
    assert Explanation.objects.get().status == ExplanationStatus.DONE


def test_labeling_page_carries_the_heatmap_and_computes_the_next_items_ahead(
    zoo, client, django_capture_on_commit_callbacks
):
    # given: an annotator on the labeling page
    project, _, _items, version, annotator, _ = zoo
    client.force_login(annotator)
    page = client.get(reverse("labeling:label", args=[project.slug]))
    body = page.content.decode()
    item = page.context["item"]
    top = page.context["suggestions"][0]
    # then: a hidden heatmap layer over the image, the h key in the help, every suggested class clickable
    assert 'id="explain-slot"' in body
    assert "<kbd>h</kbd> heatmap" in body
    assert body.count("data-explain-url=") == len(page.context["suggestions"])
    assert "js/explain.js" in body
    # when: the layer loads (it names the next items of the queue, as the image prefetch does)
    ahead = [p.pk for p in page.context["prefetch"]]
    assert ahead
    assert f"ahead={'%2C'.join(map(str, ahead))}" in page.context["explain_top"]
    with django_capture_on_commit_callbacks(execute=True):
        client.get(page.context["explain_top"])
    # then: this item's top class and each next item's top class are computed
    rows = {(r.item_id, r.class_index): r.status for r in Explanation.objects.all()}
    assert rows[(item.pk, version.class_ids.index(top.class_id))] == ExplanationStatus.DONE
    assert {item_id for item_id, _ in rows} == {item.pk, *ahead}
    assert set(rows.values()) == {ExplanationStatus.DONE}


def test_review_label_error_and_confusion_pages_show_the_heatmap(zoo, client, member_of):
    # given: an item labeled "cat" that the model predicts otherwise, flagged by the label-error search
    import numpy as np

    from training.ml.evaluate import evaluate
    from training.models import LabelErrorSearch

    project, classes, items, version, annotator, reviewer = zoo
    item = items[0]
    prediction = item.predictions.get()
    predicted = prediction.predicted_class
    given = next(c for c in classes if c.pk != predicted.pk)
    annotation = annotation_create(item=item, user=annotator, class_ids=[given.pk])
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=1, suspects={str(item.pk): [given.pk, predicted.pk, 0.9, 0.05]}
    )
    ReviewTask.objects.filter(item=item).delete()
    ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.LABEL_ERROR)
    top_url = reverse("training:explanation", args=[project.slug, item.pk, predicted.pk])
    client.force_login(reviewer)
    # when: the reviewer opens the review queue
    body = client.get(reverse("labeling:review", args=[project.slug])).content.decode()
    # then: the card's image has a heatmap layer for the model's top class, and its classes are clickable
    assert 'id="review-explain"' in body
    assert f'hx-get="{top_url}"' in body
    assert body.count("data-explain-url=") == len(version.class_ids[:3])
    # when: the reviewer opens the suspected-label-errors list
    body = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    # then: the row shows where the model sees the class it predicted, loaded as it scrolls into view
    assert f'hx-get="{top_url}"' in body
    assert 'hx-trigger="intersect once"' in body
    # when: a manager drills into the confusion cell (true = given, predicted = the model's class) of v1
    names = [c.name for c in classes]
    version.metrics = evaluate(np.asarray([prediction.probabilities]), [classes.index(given)], names)
    version.save()
    manager = member_of(project, Role.MANAGER, "maria")
    client.force_login(manager)
    url = reverse("training:model_confusion_items", args=[project.slug])
    body = client.get(f"{url}?v=1&t={classes.index(given)}&p={classes.index(predicted)}").content.decode()
    # then: the item carries v1's heatmap of the predicted class
    assert f'data-item="{item.pk}"' in body
    assert f'hx-get="{top_url}?version=1"' in body


def test_a_duplicate_delivery_does_nothing_and_a_dead_workers_row_is_taken_again(zoo, monkeypatch):
    # given: a queued explanation (its task not sent: the broker is stubbed away)
    from datetime import timedelta

    from django.utils import timezone

    import training.services.explanations as service

    _, _, items, version, _, _ = zoo
    monkeypatch.setattr(service, "task_send", lambda name, *args: True)
    row = service.explanation_request(version=version, item=items[0], class_index=0)
    # when: the task is delivered twice
    first = service.explanation_compute(explanation_id=row.pk)
    second = service.explanation_compute(explanation_id=row.pk)
    # then: the second delivery finds it done and computes nothing
    assert first["status"] == ExplanationStatus.DONE
    assert second == {"explanation": row.pk, "skipped": True}
    # when: a worker died while running another one (redelivered later), and once it is stale
    other = service.explanation_request(version=version, item=items[1], class_index=0)
    Explanation.objects.filter(pk=other.pk).update(status=ExplanationStatus.RUNNING, started_at=timezone.now())
    assert service.explanation_compute(explanation_id=other.pk)["skipped"]
    stale = timezone.now() - timedelta(seconds=service.STALE_RUNNING_SECONDS + 1)
    Explanation.objects.filter(pk=other.pk).update(started_at=stale)
    # then: the redelivery computes it
    assert service.explanation_compute(explanation_id=other.pk)["status"] == ExplanationStatus.DONE

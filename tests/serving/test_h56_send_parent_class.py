"""Send to queue by a parent class (tester h56 P11): in a taxonomy a model predicts leaves ("round / circle / red"),
so "round / circle" stands for itself and every class under it, as it does in a dataset export's filter and the
items API's label_class. The API, the Monitoring page and the command send those predictions; a class the project
does not have is refused by name, and a class nobody predicted says so instead of pointing at image retention."""

from __future__ import annotations

import json

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import Item, Job, Role, TaskType
from serving.models import PredictionLog
from tests.factories import page_client, token_client
from tests.serving.test_monitoring_nested_classes import (
    CIRCLE_BLUE,
    CIRCLE_RED,
    SQUARE_RED,
    log_predictions,
    sent_items,
    taxonomy,
)

pytestmark = pytest.mark.django_db

CIRCLE_BLUE_STORED = "round/circle/blue"  # as an older checkpoint logged it


@pytest.fixture
def shapes(project_factory, label_class_factory, member_of):
    """round / circle / {red, blue} and angular / square / red, with 5 kept predictions not sent yet: 2 circle red,
    1 circle blue (an older checkpoint's spelling) and 2 square red; and the project's manager."""
    project = project_factory(slug="shapes", name="Shapes")
    taxonomy(project, label_class_factory)
    logs = log_predictions(project, [CIRCLE_RED, SQUARE_RED, CIRCLE_BLUE_STORED, SQUARE_RED, CIRCLE_RED], seed=91_000)
    circles = {str(log.uid) for log in logs if log.top_class != SQUARE_RED}
    return project, circles, member_of(project, Role.MANAGER, "boss")


def api_url(project) -> str:
    return f"/api/projects/{project.slug}/monitoring/send-to-queue/"


@pytest.mark.parametrize("parent", ["round / circle", "round/circle", "round"])
def test_the_api_sends_the_predictions_of_every_class_under_a_parent(
    shapes, parent, django_capture_on_commit_callbacks
):
    # Given 3 circle predictions (red twice, blue once) and 2 square ones
    project, circles, manager = shapes

    # When the manager sends the parent class through the API
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(manager).post(api_url(project), {"top_class": parent, "limit": 50}, format="json")

    # Then the 3 circles are sent and queued (it answered 400 "No production images match"), no square
    assert response.status_code == 202, response.content
    assert response.json()["params"]["send_counts"] == {"sent": 3, "already_in_project": 0}
    assert set(sent_items(project)) == circles
    assert Item.objects.filter(project=project).count() == 3


def test_the_limit_picks_the_least_confident_under_the_parent(shapes, django_capture_on_commit_callbacks):
    # Given the circles, the least confident of them the older checkpoint's blue, then the last red
    project, _circles, manager = shapes

    # When the manager sends the 2 least confident circles
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(manager).post(api_url(project), {"top_class": "round / circle", "limit": 2})

    # Then those two went, not the squares (less confident than the first red) nor the most confident red
    assert response.status_code == 202, response.content
    sent = PredictionLog.objects.filter(project=project).exclude(queued_at=None)
    assert sorted(log.top_class for log in sent) == [CIRCLE_RED, CIRCLE_BLUE_STORED]


def test_the_monitoring_page_offers_and_sends_a_parent_class(shapes, django_capture_on_commit_callbacks):
    # Given the manager on the Monitoring page: its class field offers the parents as well as the leaves
    project, circles, manager = shapes
    client = page_client(manager)
    page = client.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    choices = page.split('<datalist id="class-paths">')[1].split("</datalist>")[0]
    for path in ("round", "round / circle", "angular / square", CIRCLE_RED, CIRCLE_BLUE, SQUARE_RED):
        assert f'<option value="{path}"></option>' in choices

    # When they send "round / circle" from the page's form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("serving:send_to_queue", args=[project.slug]),
            {"order": "lowest_confidence", "limit": 50, "top_class": "round / circle"},
        )

    # Then the page says 3 were sent, and those are the circles
    assert response.status_code == 302, response.content.decode()[-2000:]
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("3 production images sent to the labeling queue (import job ")
    assert set(sent_items(project)) == circles
    # and the field's help says what a class stands for
    assert "A class stands for itself and every class under it." in page


def test_the_command_sends_a_parent_class(shapes, capsys, django_capture_on_commit_callbacks):
    project, circles, _manager = shapes
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_to_queue", project.slug, "--class", "round/circle")
    assert "3 production images sent to the labeling queue of shapes" in capsys.readouterr().out
    assert set(sent_items(project)) == circles


def test_an_unknown_class_is_refused_by_name_and_nothing_is_sent(shapes):
    # Given the project's classes: round / circle has no "hexagon"
    project, _circles, manager = shapes

    # When the manager names it in the API, on the page and in the command
    api = token_client(manager).post(api_url(project), {"top_class": "round / hexagon"}, format="json")
    page = page_client(manager).post(
        reverse("serving:send_to_queue", args=[project.slug]),
        {"order": "lowest_confidence", "limit": 5, "top_class": "round/hexagon"},
    )
    with pytest.raises(CommandError, match="No class 'round / hexagon' in this project"):
        call_command("send_to_queue", project.slug, "--class", "round / hexagon")

    # Then each names the class it does not know, not "no production images match", and nothing was sent
    assert api.status_code == 400
    detail = json.dumps(api.json(), ensure_ascii=False)
    assert "No class 'round / hexagon' in this project" in detail
    assert "No production images match" not in detail
    assert page.status_code == 400
    assert "No class &#x27;round / hexagon&#x27; in this project" in page.content.decode()
    assert not PredictionLog.objects.filter(project=project).exclude(queued_at=None).exists()
    assert not Job.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("top_class", "count"), [("angular", 2), ("angular / square / red", 2), ("round / circle / blue", 1)]
)
def test_every_class_with_predictions_under_it_sends_them(shapes, top_class, count, django_capture_on_commit_callbacks):
    project, _circles, manager = shapes
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(manager).post(api_url(project), {"top_class": top_class}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["params"]["send_counts"]["sent"] == count


def test_a_class_nobody_predicted_says_so_not_retention(project_factory, label_class_factory, member_of):
    # Given a taxonomy with a third root, "star / red", that no prediction gave
    project = project_factory(slug="shapes2", name="Shapes 2")
    taxonomy(project, label_class_factory)
    star = label_class_factory(project=project, name="star", order=7)
    label_class_factory(project=project, name="red", parent=star, order=8)
    log_predictions(project, [CIRCLE_RED, SQUARE_RED], seed=92_000)
    client = token_client(member_of(project, Role.MANAGER, "boss"))

    # When the manager sends "star", then "star / red" by model version 1, then "round" by version 9
    star_any = client.post(api_url(project), {"top_class": "star"}, format="json")
    leaf = client.post(api_url(project), {"top_class": "star/red", "version": 1}, format="json")
    version = client.post(api_url(project), {"top_class": "round", "version": 9}, format="json")

    # Then each says no prediction matches those filters, not that images must still be kept
    assert [r.status_code for r in (star_any, leaf, version)] == [400, 400, 400]
    assert star_any.json()["detail"] == [
        "No production images match: the prediction log has no prediction of “star” or a class under it."
    ]
    assert leaf.json()["detail"] == [
        "No production images match: the prediction log has no prediction of “star / red” by model version 1."
    ]
    assert version.json()["detail"] == [
        "No production images match: the prediction log has no prediction of “round” or a class under it by "
        "model version 9."
    ]
    assert not Job.objects.filter(project=project).exists()


def test_a_multi_label_parent_sends_each_prediction_that_gave_a_class_under_it_once(
    project_factory, label_class_factory, member_of, django_capture_on_commit_callbacks
):
    # Given a multi-label taxonomy animal / {cat, dog} and plant / tree, and 4 predictions: {cat, dog} (two classes
    # under animal), {cat, tree}, {dog} and {tree}
    project = project_factory(slug="scenes", name="Scenes", task_type=TaskType.MULTI)
    animal = label_class_factory(project=project, name="animal", order=0)
    plant = label_class_factory(project=project, name="plant", order=1)
    for k, (name, parent) in enumerate((("cat", animal), ("dog", animal), ("tree", plant))):
        label_class_factory(project=project, name=name, parent=parent, order=2 + k)
    cat, dog, tree = "animal / cat", "animal / dog", "plant / tree"
    logs = log_predictions(project, [(cat, dog), (tree, cat), (dog,), (tree,)], seed=93_000)
    animals = {str(log.uid) for log in logs if log.top_class != tree or log.predicted_labels.count() > 1}

    # When the manager sends "animal"
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(member_of(project, Role.MANAGER, "boss")).post(
            api_url(project), {"top_class": "animal", "limit": 50}, format="json"
        )

    # Then the 3 predictions that gave a class under it are sent, each once; the tree alone is not
    assert response.status_code == 202, response.content
    assert response.json()["params"]["send_to_queue"]["predictions"] == 3
    assert set(sent_items(project)) == animals
    assert len(animals) == 3

"""Review and label-quality pages over HTTP: what a reviewer sees and does, and who may not."""

import re

import pytest
from django.urls import reverse

from labeling.models import Item, ItemState, ResolvedLabel, Review, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.reviews import item_gold_set, review_task_open
from training.models import LabelErrorSearch

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cat_dog_review):
    """Three items "ann" labeled cat, all sampled for audit; reviewer "rev" and manager "boss"."""
    members = {"ann": Role.ANNOTATOR, "rev": Role.REVIEWER, "boss": Role.MANAGER}
    return cat_dog_review(review_sample_rate=1.0, members=members, labeled=3)


def test_reviewer_sees_the_next_task_with_the_given_label_and_annotator(client, world):
    client.force_login(world["rev"])
    response = client.get(reverse("labeling:review", args=[world["project"].slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert ReviewTask.objects.filter(reason=ReviewTaskReason.SAMPLE, done=False).count() == 3  # sample rate 1.0
    assert 'id="given-annotator">ann<' in html
    assert "Audit sample" in html
    assert 'data-key="2"' in html  # class hotkeys for corrections


def test_verdict_post_records_review_and_serves_the_next_card(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).order_by("id").first()

    response = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": "correct", "class_ids": [world["dog"].pk]},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert 'id="review-card"' in response.content.decode()
    assert set(ResolvedLabel.objects.get(item_id=task.item_id).classes.values_list("name", flat=True)) == {"dog"}
    assert Review.objects.get().reviewer == world["rev"]


def test_bad_verdict_shows_an_error_and_changes_nothing(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).first()
    response = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": "correct"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "A correction needs at least one class" in response.content.decode()
    assert not Review.objects.exists()


def test_a_comment_over_the_limit_is_refused_not_cut(client, world):
    """A 20,000-character comment was saved cut to 5,000 without a word."""
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).first()
    verdict = reverse("labeling:review_verdict", args=[project.slug, task.pk])

    response = client.post(verdict, {"verdict": "accept", "comment": "x" * 5001}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert "A comment may be at most 5,000 characters (this one has 5,001); nothing was saved." in (
        response.content.decode()
    )
    assert not Review.objects.exists()
    assert not ReviewTask.objects.get(pk=task.pk).done
    assert client.post(verdict, {"verdict": "accept", "comment": "y" * 5000}, HTTP_HX_REQUEST="true").status_code == 200
    assert Review.objects.get().comment == "y" * 5000


def test_reject_over_plain_post_redirects_and_reopens_the_item(client, world):
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).first()
    response = client.post(reverse("labeling:review_verdict", args=[project.slug, task.pk]), {"verdict": "reject"})
    assert response.status_code == 302
    assert Item.objects.get(pk=task.item_id).state == ItemState.UNLABELED


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("labeling:review", []),
        ("labeling:quality", []),
        ("labeling:review_label_errors", []),
        ("training:model_quality", []),
        ("training:model_compare", []),
    ],
)
def test_annotators_get_403_on_review_and_quality_pages(client, world, name, args):
    client.force_login(world["ann"])
    assert client.get(reverse(name, args=[world["project"].slug, *args])).status_code == 403


def test_annotator_cannot_post_verdicts_or_mark_gold(client, world):
    project = world["project"]
    task = review_task_open(project=project, item=world["items"][0], reason=ReviewTaskReason.SAMPLE)
    client.force_login(world["ann"])
    assert (
        client.post(reverse("labeling:review_verdict", args=[project.slug, task.pk]), {"verdict": "accept"}).status_code
        == 403
    )
    client.force_login(world["rev"])  # reviewers review but do not curate gold
    gold_url = reverse("labeling:item_gold", args=[project.slug, world["items"][0].pk])
    assert client.post(gold_url, {"class_ids": [world["cat"].pk]}).status_code == 403
    assert not Review.objects.exists()


def test_other_projects_are_404(client, world, project_factory, member_of):
    other = project_factory()
    stranger = member_of(other, Role.MANAGER, "stranger")
    client.force_login(stranger)
    project = world["project"]
    assert client.get(reverse("labeling:review", args=[project.slug])).status_code == 404
    assert client.get(reverse("labeling:quality", args=[project.slug])).status_code == 404
    task = review_task_open(project=project, item=world["items"][0], reason=ReviewTaskReason.SAMPLE)
    # A task id of project A under project B's URL is not found either.
    assert (
        client.post(reverse("labeling:review_verdict", args=[other.slug, task.pk]), {"verdict": "accept"}).status_code
        == 404
    )


def test_manager_marks_an_item_gold_from_the_review_page(client, world):
    project, item = world["project"], world["items"][0]
    client.force_login(world["boss"])
    response = client.post(
        reverse("labeling:item_gold", args=[project.slug, item.pk]), {"action": "set", "class_ids": [world["dog"].pk]}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.is_gold
    assert list(item.gold_classes.values_list("name", flat=True)) == ["dog"]
    # ann answered "cat" on it: that wrong gold answer now waits for review.
    assert ReviewTask.objects.filter(item=item, reason=ReviewTaskReason.GOLD, done=False).exists()


def test_quality_page_shows_annotator_accuracy(client, world):
    project = world["project"]
    item_gold_set(item=world["items"][0], class_ids=[world["cat"].pk])
    item_gold_set(item=world["items"][1], class_ids=[world["dog"].pk])
    client.force_login(world["rev"])
    html = client.get(reverse("labeling:quality", args=[project.slug])).content.decode()
    assert "Fleiss&#x27; kappa" in html or "Fleiss' kappa" in html
    row = html[html.index('data-user="ann"') :]
    row = row[: row.index("</tr>")]
    assert ">3<" in row  # labels
    assert "50%" in row  # 1 of 2 gold answers right
    assert "<svg" in html


def test_label_errors_page_lists_tasks_by_score(client, world):
    project = world["project"]
    low, high = world["items"][0], world["items"][1]
    ReviewTask.objects.create(project=project, item=low, reason=ReviewTaskReason.LABEL_ERROR, score=0.3)
    ReviewTask.objects.create(project=project, item=high, reason=ReviewTaskReason.LABEL_ERROR, score=0.9)
    # The page lists the suspects of the stored search (the model that judged each row disagrees with its label)
    cat, dog = world["cat"], world["dog"]
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=3, estimated_share=0.5, share_low=0.2, share_high=0.8,
        suspects={str(low.pk): [cat.pk, dog.pk, 0.6, 0.3], str(high.pk): [cat.pk, dog.pk, 0.9, 0.1]},
    )  # fmt: skip
    client.force_login(world["rev"])
    html = client.get(reverse("labeling:review_label_errors", args=[project.slug])).content.decode()
    assert html.index(f'data-item="{high.pk}"') < html.index(f'data-item="{low.pk}"')


def test_queue_api_never_returns_gold_answers(client, project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(gold_rate=1.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    secret = label_class_factory(project=project, name="zebra", hotkey="2")
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    gold = item_factory(project=project, is_gold=True)
    item_gold_set(item=gold, class_ids=[secret.pk])
    client.force_login(annotator)
    response = client.post(reverse("api-queue-next", args=[project.slug]))
    if response.status_code == 405:
        response = client.get(reverse("api-queue-next", args=[project.slug]))
    assert response.status_code == 200
    data = response.json()
    assert data["item"]["id"] == gold.pk  # the gold item is served like any other
    assert "gold" not in response.content.decode().lower()
    assert data["suggestions"] == []  # and its answer is not offered as a suggestion


def _open_task(world, item):
    return ReviewTask.objects.get(item=item, reason=ReviewTaskReason.SAMPLE, done=False)


def _model_version(project, number, classes, active):
    from training.models import ModelVersion

    return ModelVersion.objects.create(
        project=project,
        number=number,
        artifact_path="x",
        architecture="a",
        class_ids=[c.pk for c in classes],
        active=active,
    )


def _predict(version, item, probabilities, classes):
    from training.models import Prediction

    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    return Prediction.objects.create(
        item=item,
        model_version=version,
        probabilities=probabilities,
        predicted_class=classes[best],
        confidence=probabilities[best],
        uncertainty=1 - probabilities[best],
    )


def test_card_shows_the_active_versions_prediction_and_says_when_it_has_none(client, world):
    # Given: v1 (old) predicted both items; v6 (active) scored only the first one.
    project, cat, dog = world["project"], world["cat"], world["dog"]
    scored, unscored = world["items"][0], world["items"][1]
    classes = [cat, dog]
    v1 = _model_version(project, 1, classes, active=False)
    v6 = _model_version(project, 6, classes, active=True)
    _predict(v1, scored, [0.03, 0.97], classes)
    _predict(v1, unscored, [0.03, 0.97], classes)
    _predict(v6, scored, [0.71, 0.29], classes)
    client.force_login(world["rev"])
    url = reverse("labeling:review", args=[project.slug])
    client.get(url)  # opens the sample tasks

    # When: the reviewer opens each item's card.
    scored_html = client.get(url, {"task": _open_task(world, scored).pk}).content.decode()
    unscored_html = client.get(url, {"task": _open_task(world, unscored).pk}).content.decode()

    # Then: the active version's numbers, never v1's; without one, the card says why (v6, made after these labels,
    # was trained on them: a round stores no prediction of a label it learned).
    assert "97%" not in unscored_html
    assert re.search(r"\bv1\b", unscored_html) is None  # a word: the page's random CSRF token may hold "v1"
    assert "v6 was trained on this item with this label" in unscored_html
    assert 'id="model-version">v6<' in unscored_html
    assert 'id="model-version">v6<' in scored_html
    assert "71%" in scored_html
    assert "97%" not in scored_html


def _tab_count(html: str, reason: str) -> int:
    import re

    nav = re.search(r'<nav id="review-tabs"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, "the reason tabs are in the response"
    match = re.search(rf'data-reason="{reason}"[^>]*>.*?<span class="count">(\d+)</span>', nav.group(1), re.S)
    return int(match.group(1))


def test_htmx_verdict_updates_the_reason_tab_counts_out_of_band(client, world):
    # Given: three audit-sample tasks, counted on the tabs.
    project = world["project"]
    client.force_login(world["rev"])
    page = client.get(reverse("labeling:review", args=[project.slug])).content.decode()
    assert _tab_count(page, "sample") == 3
    task = ReviewTask.objects.filter(done=False).order_by("id").first()

    # When: the reviewer accepts one through htmx.
    response = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]), {"verdict": "accept"}, HTTP_HX_REQUEST="true"
    )

    # Then: the response carries the tabs as an out-of-band swap with the new count.
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="review-card"' in html
    assert '<nav id="review-tabs"' in html
    assert 'hx-swap-oob="true"' in html[html.index('<nav id="review-tabs"') :].split(">", 1)[0]
    assert _tab_count(html, "sample") == 2


def _correction_buttons(html: str) -> list[dict]:
    import re

    fieldset = re.search(r'<fieldset id="correct-classes".*?</fieldset>', html, re.S).group(0)
    out = []
    for match in re.finditer(r'<label class="class-btn[^"]*"([^>]*)>(.*?)</label>', fieldset, re.S):
        attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', match.group(1)))
        kbd = re.search(r"<kbd>([^<]*)</kbd>", match.group(2))
        out.append({**attrs, "kbd": kbd.group(1) if kbd else None})
    return out


def test_every_correction_class_has_a_visible_key_per_level_in_a_deep_hierarchy(
    client, project_factory, item_factory, member_of
):
    # Given: a 4-level taxonomy of 150 leaves under 22 top-level classes, built the way an import builds it.
    from labeling.services.projects import label_classes_from_paths

    project = project_factory(review_sample_rate=1.0)
    paths = [f"top{t:02d}/mid{t:02d}{m}/low{t:02d}{m}{n}/leaf{i:03d}" for i, (t, m, n) in enumerate(
        (i % 22, i % 3, i % 2) for i in range(150)
    )]  # fmt: skip
    leaves = label_classes_from_paths(project=project, paths=paths)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    rev = member_of(project, Role.REVIEWER, "rev")
    annotation_create(item=item_factory(project=project), user=ann, class_ids=[leaves[paths[0]].pk])
    client.force_login(rev)

    # When: the reviewer opens the card.
    html = client.get(reverse("labeling:review", args=[project.slug])).content.decode()

    # Then: every class shows its key, and keys are unique among siblings (one level is shown at a time).
    buttons = _correction_buttons(html)
    assert len(buttons) == project.classes.count()
    assert all(b["key"] and b["kbd"] == b["key"] for b in buttons), [b for b in buttons if not b["kbd"]][:3]
    by_level: dict[str, list[str]] = {}
    for b in buttons:
        by_level.setdefault(b["parent"], []).append(b["key"])
    assert len(by_level[""]) == 22
    assert all(len(keys) == len(set(keys)) for keys in by_level.values())
    assert 'data-hierarchical="1"' in html


def test_correction_to_the_given_class_is_refused_with_a_message(client, world):
    # Given: an audit task on an item that ann labeled "cat".
    project = world["project"]
    client.force_login(world["rev"])
    client.get(reverse("labeling:review", args=[project.slug]))
    task = ReviewTask.objects.filter(done=False).order_by("id").first()

    # When: the reviewer "corrects" it to cat.
    response = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": "correct", "class_ids": [world["cat"].pk]},
        HTTP_HX_REQUEST="true",
    )

    # Then: refused with a message on the same card; nothing recorded, the task still open.
    html = response.content.decode()
    assert response.status_code == 400
    assert "already the given label" in html
    assert f'data-task="{task.pk}"' in html
    assert not Review.objects.exists()
    task.refresh_from_db()
    assert not task.done
    assert ResolvedLabel.objects.get(item_id=task.item_id).source != "review"


def test_a_suspected_label_error_card_shows_what_the_out_of_sample_model_said(client, world):
    # Given a label-error search whose cross-validated model says "dog" (91 %) for an item labeled "cat"
    project, item, cat, dog = world["project"], world["items"][0], world["cat"], world["dog"]
    ReviewTask.objects.filter(project=project).delete()
    ReviewTask.objects.create(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=0.9)
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=3, suspects={str(item.pk): [cat.pk, dog.pk, 0.91, 0.04]}
    )
    client.force_login(world["rev"])

    # When the reviewer opens the label-error tab
    html = client.get(reverse("labeling:review", args=[project.slug]) + "?reason=label_error").content.decode()

    # Then the card says what that model said, not a stale or missing active-version prediction
    assert 'id="out-of-sample"' in html
    note = html[html.index('id="out-of-sample"') :]
    assert "<b>dog</b> (91%)" in note[:400]
    assert "given label 4%" in note[:400]

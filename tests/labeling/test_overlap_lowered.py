"""A manager lowers "Annotators per image" mid-project: the images that now have enough labels are resolved, an
annotator holding one gets the next image, and disagreements go to review; nothing is left partial and unserved."""

from __future__ import annotations

import re

import pytest

from labeling.models import ItemState, ResolvedLabel, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import LabelingConflict, annotation_create
from labeling.services.queue import item_claim_next
from tests.factories import page_client
from tests.labeling.test_project_permissions import settings_post

pytestmark = pytest.mark.django_db


def test_lowering_the_overlap_resolves_the_images_that_now_have_enough_labels(
    project_factory, label_class_factory, item_factory, member_of
):
    # Given a project asking 3 annotators per image: one image with one label, one with two that agree, one with two
    # that disagree, two not labeled; carl holds the one with one label
    project = project_factory(annotations_per_item=3, review_sample_rate=0.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    dog = label_class_factory(project=project, name="dog", hotkey="2")
    ann, bob, carl = (member_of(project, Role.ANNOTATOR, name) for name in ("ann", "bob", "carl"))
    manager = member_of(project, Role.MANAGER, "boss")
    one, agreed, split, *fresh = (item_factory(project=project, priority=10 - k) for k in range(5))
    annotation_create(item=one, user=ann, class_ids=[cat.pk])
    for item, second in ((agreed, cat), (split, dog)):
        annotation_create(item=item, user=ann, class_ids=[cat.pk])
        annotation_create(item=item, user=bob, class_ids=[second.pk])
    assert item_claim_next(project=project, user=carl) == one

    # When the manager sets it to 1
    client = page_client(manager)
    response = settings_post(client, project, annotations_per_item=1)

    # Then the three images with labels are resolved and the page says so
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Settings saved. 3 images that now have enough labels were resolved." in page, re.findall(
        r"Settings saved[^<]*", page
    )
    for item in (one, agreed, split):
        item.refresh_from_db()
    assert {one.state, agreed.state, split.state} == {ItemState.LABELED}
    labels = {i.pk: set(ResolvedLabel.objects.get(item=i).classes.values_list("name", flat=True)) for i in (one, split)}
    assert labels == {one.pk: {"cat"}, split.pk: {"dog"}}  # one annotator asked: the newest label, as for any item
    # and the two annotators who disagreed are put before a reviewer
    assert ReviewTask.objects.filter(item=split, reason=ReviewTaskReason.DISAGREEMENT, done=False).exists()
    # and carl, who held the first one, is served a fresh image, not a closed one he can neither label nor skip
    assert one.lease_user_id is None
    assert item_claim_next(project=project, user=carl) in fresh
    with pytest.raises(LabelingConflict, match="needs no more annotations"):
        annotation_create(item=one, user=carl, class_ids=[cat.pk])

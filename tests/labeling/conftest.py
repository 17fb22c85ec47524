"""Fixtures of the review tests (the cat/dog project whose labels they judge, and the heatmap project of a card) and
of the import job card tests (the project's manager, and their page client: `manager_page`, so that Playwright's
`page` in this folder's browser tests stays Playwright's)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from django.test import Client

from labeling.models import ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.reviews import review_task_open
from tests.factories import page_client
from tests.training.explain_helpers import explained_project


@pytest.fixture
def manager(project, member_of):
    return member_of(project, Role.MANAGER)


@pytest.fixture
def manager_page(manager) -> Client:
    """The manager's signed-in page client."""
    return page_client(manager)


@pytest.fixture
def cat_dog_review(project_factory, label_class_factory, item_factory, member_of) -> Callable[..., dict]:
    """cat_dog_review(review_sample_rate=, members=, labeled=0, open_tasks=False) -> dict of a project to review in.

    The project has classes cat (key 1) and dog (key 2) and `members` (name -> role, made in that order; by default
    annotator "ann" and reviewer "rev"); "ann" labels `labeled` new items cat. With `open_tasks`, each of those items
    gets an audit-sample review task. Keys: project, cat, dog, one per member name, items, and tasks with `open_tasks`.
    """

    def build(
        *,
        review_sample_rate: float,
        members: Mapping[str, str] | None = None,
        labeled: int = 0,
        open_tasks: bool = False,
    ) -> dict:
        project = project_factory(review_sample_rate=review_sample_rate)
        cat = label_class_factory(project=project, name="cat", hotkey="1")
        dog = label_class_factory(project=project, name="dog", hotkey="2")
        roles = members if members is not None else {"ann": Role.ANNOTATOR, "rev": Role.REVIEWER}
        users = {name: member_of(project, role, name) for name, role in roles.items()}
        items = [item_factory(project=project) for _ in range(labeled)]
        for item in items:
            annotation_create(item=item, user=users["ann"], class_ids=[cat.pk])
        world = {"project": project, "cat": cat, "dog": dog, **users, "items": items}
        if open_tasks:
            world["tasks"] = [
                review_task_open(project=project, item=item, reason=ReviewTaskReason.SAMPLE) for item in items
            ]
        return world

    return build


@pytest.fixture
def explained_zoo(project_factory, label_class_factory, item_factory, member_of) -> tuple:
    """(project, classes, items, version, annotator, reviewer) of explained_project: cat, dog, bird and a model."""
    return explained_project(project_factory, label_class_factory, item_factory, member_of)


@pytest.fixture
def audit_card() -> Callable[..., None]:
    """audit_card(project, item, annotator, cls): the annotator labels the item `cls`, and that label is the only
    review task (an audit sample)."""

    def make(project, item, annotator, cls) -> None:
        annotation = annotation_create(item=item, user=annotator, class_ids=[cls.pk])
        ReviewTask.objects.all().delete()
        ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)

    return make

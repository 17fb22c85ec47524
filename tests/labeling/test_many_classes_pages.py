"""Pages of a single-label project with a three-level taxonomy of 160 classes (120 leaves), some of whose names run
to 130-190 characters, as a tester built it: the settings page folds its class list, the label-quality page lists
only the classes that have something to show, the model page names at most 30 classes without a holdout item, and
job summaries read in words."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, LabelClass, Role, TaskType
from labeling.services.annotations import annotation_create
from labeling.services.projects import label_classes_from_paths
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

TOPS = ["animals", "buildings", "clothing", "food", "furniture", "music", "nature", "plants", "sports", "tools"]
MIDS = ["wild", "farm", "city"]
LEAVES = ["one", "two", "three", "four"]


def long_name(n: int) -> str:
    """A leaf name of 130 to 190 characters, as some catalogues name their classes."""
    words = f"very long catalogue description number {n} of a class whose name keeps going well past any menu "
    return (words * 3)[: 130 + 15 * (n % 5)].strip()


def many_class_paths() -> list[str]:
    """Leaf paths of 10 x 3 x 4 = 120 leaves under 30 inner classes and 10 top levels (160 classes); every seventh
    leaf has a long name."""
    paths = []
    for t, top in enumerate(TOPS):
        for m, mid in enumerate(MIDS):
            for leaf_index, leaf in enumerate(LEAVES):
                n = (t * len(MIDS) + m) * len(LEAVES) + leaf_index
                paths.append(f"{top}/{mid}/{long_name(n) if n % 7 == 0 else leaf}")
    return paths


@pytest.fixture
def atlas(project_factory, member_of):
    project = project_factory(name="Atlas", slug="atlas", task_type=TaskType.SINGLE, annotations_per_item=2,
                              holdout_fraction=0.0)  # fmt: skip
    classes = label_classes_from_paths(project=project, paths=many_class_paths())
    assert len(classes) == 160
    return project, classes, member_of(project, Role.MANAGER, "mia")


def test_settings_folds_a_list_of_160_classes_and_keeps_every_control(client, atlas):
    project, classes, manager = atlas
    client.force_login(manager)

    # When the manager opens the settings page
    html = client.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()

    # Then the class list is folded under a summary that counts it
    folded = re.search(r"<details id=\"class-list\"([^>]*)>\s*<summary>([^<]*)</summary>", html)
    assert folded, "the class list is not in a <details>"
    assert "open" not in folded.group(1)
    assert "{#" not in html  # no template comment leaks onto the page
    assert folded.group(2) == "160 classes"
    # ... every class keeps its archive button inside it, and the add-class, member and settings forms follow it
    end = html.index("</table>", folded.end())
    inside = html[folded.end() : end]
    for label_class in classes.values():
        assert reverse("labeling:label_class_archive", args=[project.slug, label_class.pk]) in inside
    after = html[end:]
    for control in ('name="action" value="class"', 'name="action" value="member"', 'name="action" value="settings"'):
        assert control in after


def test_settings_keeps_a_short_class_list_open(client, project_factory, label_class_factory, member_of):
    project = project_factory()
    for n in range(20):
        label_class_factory(project=project, name=f"class {n}")
    client.force_login(member_of(project, Role.MANAGER, "mia"))
    html = client.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    assert re.search(r'<details id="class-list" open>\s*<summary>20 classes</summary>', html)


def test_archiving_from_the_folded_list_still_works(client, atlas):
    project, classes, manager = atlas
    client.force_login(manager)
    target = classes["food/farm/two"]
    response = client.post(reverse("labeling:label_class_archive", args=[project.slug, target.pk]))
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.archived


def test_quality_lists_only_classes_with_ratings_and_names_the_rest_in_one_line(client, atlas, item_factory, member_of):
    # Given two annotators who labeled the same three items with two classes between them
    project, classes, _ = atlas
    cat, dog = classes["animals/wild/two"], classes["animals/wild/three"]
    ann, bob = member_of(project, Role.ANNOTATOR, "ann"), member_of(project, Role.ANNOTATOR, "bob")
    for n in range(3):
        item = item_factory(project=project)
        annotation_create(item=item, user=ann, class_ids=[cat.pk])
        annotation_create(item=item, user=bob, class_ids=[cat.pk if n else dog.pk])
    client.force_login(member_of(project, Role.REVIEWER, "rita"))

    # When a reviewer opens the label-quality page
    html = client.get(reverse("labeling:quality", args=[project.slug])).content.decode()

    # Then the per-class table has a row for each of the two classes with ratings, and none of "0 / n/a"
    table = html[html.index('id="classes"') : html.index("</table>", html.index('id="classes"'))]
    rows = re.findall(r"<tr><td>([^<]*)</td>", table)
    assert sorted(rows) == sorted(LabelClass.objects.get(pk=c.pk).path for c in (cat, dog))
    # ... and one line counts the other 158 classes and names the first 30 of them, then how many more
    line = re.search(r'<p class="muted" id="classes-unrated">(.*?)</p>', html, re.S)
    assert line, "no line for the classes without ratings"
    text = " ".join(line.group(1).split())
    assert "158 classes with no label yet" in text
    assert text.endswith(" … and 128 more.")
    unrated = [c for c in LabelClass.objects.filter(project=project) if c.pk not in (cat.pk, dog.pk)]
    named = [c for c in unrated if c.path in text]
    assert 25 <= len(named) <= 30, len(named)


def test_model_page_counts_classes_without_a_holdout_item_and_names_at_most_30(client, atlas):
    # Given an active version whose holdout had no item of 120 classes
    project, classes, manager = atlas
    ids = [c.pk for c in classes.values()]
    names = [c.path for c in classes.values()]
    missing = names[:120]
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="lite0", class_ids=ids, label_count=200,
        metrics={"accuracy": 0.5, "macro_f1": 0.4, "ece": 0.1, "n": 40, "no_support": missing}, active=True,
    )  # fmt: skip
    client.force_login(manager)

    # When the manager opens the model page
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()

    # Then the line counts them, names the first 30 in bold and says how many more there are
    line = re.search(r'<p id="no-support">(.*?)</p>', html, re.S)
    assert line
    text = line.group(1)
    assert "No holdout item of 120 classes:" in text
    assert text.endswith("… and 90 more</strong>.")
    bold = re.search(r"<strong>(.*?)</strong>", text, re.S).group(1)
    assert bold.count(", ") == 29
    # ... and the versions table counts them too instead of listing all 120
    row = html[html.index('id="version-1"') :]
    row = row[: row.index("</tr>")]
    assert "(120 classes have none)" in row  # no holdout item of 120 classes, not "none of them"
    assert missing[-1] not in html


def test_job_summaries_read_in_words(client, atlas):
    project, _, manager = atlas
    imported = Job.objects.create(
        project=project, kind=JobKind.IMPORT, status=JobStatus.SUCCEEDED, done=5, total=5,
        result={"imported": 3, "rejected": 0, "duplicates": 2, "labeled": 3, "label_errors": 2,
                "rejected_by_reason": {}},
    )  # fmt: skip
    searched = Job.objects.create(
        project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, done=1, total=1,
        result={"status": "too_few", "search": 8, "labels": 30, "seconds": 1.25, "not_checked": 4,
                "reason": "Too few labels to judge."},
    )  # fmt: skip
    exported = Job.objects.create(
        project=project, kind=JobKind.EXPORT_DATASET, status=JobStatus.SUCCEEDED, done=1, total=1,
        result={"format": "csv", "item_count": 12, "bytes": 2048, "dataset_hash": "ab12", "files": ["x.csv"]},
    )  # fmt: skip
    client.force_login(manager)

    def summary(job: Job) -> list[str]:
        """The summary's "key: value" parts, in the order shown (the same on PostgreSQL, whose jsonb keeps no key
        order, as on SQLite)."""
        html = client.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
        return " ".join(re.search(r'<p class="muted">(.*?)</p>', html, re.S).group(1).split()).split(" · ")

    assert summary(imported) == ["imported: 3", "labeled: 3", "duplicates: 2", "rejected: 0", "label errors: 2"]
    parts = summary(searched)
    assert not [part for part in parts if "_" in part]
    assert parts == [
        "outcome: too few", "labels: 30", "classes not checked: 4", "reason: Too few labels to judge.", "search: 8",
        "seconds: 1.25",
    ]  # fmt: skip
    assert summary(exported) == ["format: csv", "items: 12", "bytes: 2048", "dataset hash: ab12"]

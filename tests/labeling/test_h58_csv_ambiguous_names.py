"""A labels CSV row whose file name more than one image of the project carries (a Mac's "Cafe\u0301.png" and a
Windows "Café.png" are both stored as "Café.png") labels none of them and is listed as not applied, naming them by
id, whether the images were imported before or come in the same import; it labeled one of them without a word
(stop 58's tester, P7). A name that stops being shared once the import's copies are skipped still labels its image
(labeling.services.imports.csv_rows)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Item, Job, JobStatus, ResolvedLabel, Role
from tests.factories import page_client, png_bytes, token_client, upload

pytestmark = pytest.mark.django_db

NFD_CAFE = "Cafe\u0301.png"  # as a Mac names it
NFC_CAFE = "Café.png"  # as Windows names it


@pytest.fixture
def manager(project, member_of):
    return member_of(project, Role.MANAGER, "boss")


def api_import(project, manager, capture, files: dict[str, bytes], csv: str | None = None, names=None) -> Job:
    """POST /api/projects/<slug>/imports/ as a script sends it (`names`: each file's folders, optional)."""
    data = {"files": [upload(n.rsplit("/", 1)[-1], d) for n, d in files.items()]}
    if names:
        data.update(names=list(files), labels_from_folders="true")
    if csv is not None:
        data["csv"] = [upload("labels.csv", csv.encode())]
    with capture(execute=True):
        answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def labels(project) -> dict[int, list[str]]:
    return {
        r.item_id: sorted(c.path for c in r.classes.all())
        for r in ResolvedLabel.objects.filter(project=project).prefetch_related("classes")
    }


def ids(project, name: str) -> list[int]:
    return list(Item.objects.filter(project=project, original_name=name).order_by("pk").values_list("pk", flat=True))


def polled(project, manager, job: Job) -> dict:
    return token_client(manager).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()


def test_a_csv_row_for_two_images_imported_before_under_one_name_labels_neither_and_says_so(
    project, manager, django_capture_on_commit_callbacks
):
    # Given the tester's three images: a Mac's "Résumé.png" and "Café.png" (decomposed) and a Windows "Café.png"
    api_import(project, manager, django_capture_on_commit_callbacks,
               {"Re\u0301sume\u0301.png": png_bytes(1), NFD_CAFE: png_bytes(2), NFC_CAFE: png_bytes(3)})  # fmt: skip
    cafe = ids(project, NFC_CAFE)
    assert len(cafe) == 2
    resume = ids(project, "Résumé.png")

    # When a labels CSV names both
    job = api_import(project, manager, django_capture_on_commit_callbacks, {},
                     "filename,label\nRésumé.png,chat\nCafé.png,chien\n")  # fmt: skip

    # Then Résumé.png is labeled and neither Café.png is; the row is listed as not applied, naming both by id
    assert labels(project) == {resume[0]: ["chat"]}
    reason = (f"2 images have this name: Café.png (#{cafe[0]}, #{cafe[1]}); neither was labeled: label them on the "
              "labeling page")  # fmt: skip
    answer = polled(project, manager, job)
    assert answer["message"] == "1 label applied, 1 not applied"
    assert answer["errors"] == [{"name": NFC_CAFE, "reason": reason, "kind": "ambiguous file name"}]
    assert (answer["result"]["labeled"], answer["result"]["label_errors"]) == (1, 1)
    assert answer["result"]["rejected_by_reason"] == {"ambiguous file name": 1}

    # and the import page's job card shows the kind and the reason
    page = page_client(manager).get(reverse("labeling:import", args=[project.slug])).content.decode()
    text = unescape(re.sub(r"\s+", " ", page))
    assert '<td>ambiguous file name</td><td class="count">1</td>' in text
    assert reason in text


def test_a_csv_row_for_a_stored_image_and_a_new_one_of_the_same_name_labels_neither(
    project, manager, django_capture_on_commit_callbacks
):
    # Given a Mac's Café.png imported before
    api_import(project, manager, django_capture_on_commit_callbacks, {NFD_CAFE: png_bytes(2)})

    # When a Windows Café.png (other pixels) comes with a labels CSV naming Café.png
    job = api_import(project, manager, django_capture_on_commit_callbacks, {NFC_CAFE: png_bytes(3)},
                     "filename,label\nCafé.png,chien\n")  # fmt: skip

    # Then both are stored and neither is labeled; the row names both, the one imported before first
    cafe = ids(project, NFC_CAFE)
    assert len(cafe) == 2
    assert labels(project) == {}
    assert Item.objects.filter(pk__in=cafe, state="labeled").count() == 0
    assert job.errors == [
        {"name": NFC_CAFE, "reason": f"2 images have this name: Café.png (#{cafe[0]}, #{cafe[1]}); neither was "
         "labeled: label them on the labeling page"}
    ]  # fmt: skip
    assert (job.result["imported"], job.result["labeled"], job.result["label_errors"]) == (1, 0, 1)


def test_a_csv_row_for_three_new_images_of_one_name_in_the_same_import_labels_none(
    project, manager, django_capture_on_commit_callbacks
):
    # When three different images stored as Café.png (a Mac's and two from Windows folders, sent by bare name) come
    # with a CSV naming it, and one other image
    files = [(NFD_CAFE, png_bytes(2)), (NFC_CAFE, png_bytes(3)), (NFC_CAFE, png_bytes(4)), ("a.png", png_bytes(5))]
    data = {"files": [upload(n, d) for n, d in files],
            "csv": [upload("labels.csv", "filename,label\nCafé.png,chien\na.png,chat\n".encode())]}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", data, format="multipart")
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message

    # Then none of the three is labeled (before, all three were) and the row says how many carry the name
    cafe = ids(project, NFC_CAFE)
    assert len(cafe) == 3
    assert labels(project) == {ids(project, "a.png")[0]: ["chat"]}
    assert job.errors == [
        {"name": NFC_CAFE, "reason": f"3 images have this name: Café.png (#{cafe[0]}, #{cafe[1]}, #{cafe[2]}); none "
         "was labeled: label them on the labeling page"}
    ]  # fmt: skip
    assert (job.result["imported"], job.result["labeled"], job.result["label_errors"]) == (4, 1, 1)


def test_a_name_shared_only_by_copies_still_labels_its_one_image(project, manager, django_capture_on_commit_callbacks):
    # When one picture comes as a Mac's Café.png and as a Windows Café.png (the same bytes), with a CSV naming it
    job = api_import(project, manager, django_capture_on_commit_callbacks,
                     {NFD_CAFE: png_bytes(2), NFC_CAFE: png_bytes(2)}, "filename,label\nCafé.png,chien\n")  # fmt: skip

    # Then the one image stored is labeled, and the copy is a plain duplicate
    cafe = ids(project, NFC_CAFE)
    assert labels(project) == {cafe[0]: ["chien"]}
    assert Item.objects.get(pk=cafe[0]).state == "labeled"
    assert job.errors == [{"name": NFC_CAFE, "reason": "duplicate of Café.png"}]
    assert (job.result["imported"], job.result["duplicates"], job.result["labeled"]) == (1, 1, 1)
    assert job.result["label_errors"] == 0


def test_a_bare_name_that_files_in_two_folders_carry_labels_neither_and_they_keep_their_folders_class(
    project, manager, django_capture_on_commit_callbacks
):
    # When photos/cat/1.png and photos/dog/1.png (folders are classes) come with a CSV row for "1.png", and
    # photos/cat/2.png, a copy of photos/dog/2.png, with a row for "2.png"
    files = {"cat/1.png": png_bytes(1), "dog/1.png": png_bytes(2), "dog/2.png": png_bytes(3),
             "cat/2.png": png_bytes(3)}  # fmt: skip
    job = api_import(project, manager, django_capture_on_commit_callbacks, files,
                     "filename,label\n1.png,bird\n2.png,bird\n", names=True)  # fmt: skip

    # Then "1.png" labels neither (each keeps its folder's class) and says to write the path, and "2.png" labels the
    # one image stored
    by_name = {i.original_name: i.pk for i in Item.objects.filter(project=project)}
    assert labels(project) == {by_name["cat/1.png"]: ["cat"], by_name["dog/1.png"]: ["dog"],
                               by_name["dog/2.png"]: ["bird"]}  # fmt: skip
    several = "name matches several items (cat/1.png, dog/1.png); write the path in the CSV"
    assert {"name": "1.png", "reason": several} in job.errors
    assert (job.result["imported"], job.result["labeled"], job.result["label_errors"]) == (3, 3, 1)

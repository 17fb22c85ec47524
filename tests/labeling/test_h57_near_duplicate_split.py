"""A resized copy joins its original's split even when its perceptual hash moved a few bits (stop 57's tester: a bars
picture in the holdout, its 80 % JPEG copy in train, their phashes 2 bits apart): an image whose phash is NEAR_BITS
or fewer bits from a stored one takes the nearest one's split, copies that arrive together share a split whatever
the files' order, and an image further from every stored one keeps the split its own phash draws."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image

from labeling.models import Item, Role, Split
from labeling.services.imports import batches, import_job_create, import_run, item_create_from_bytes
from labeling.services.imports.validation import Limits, image_inspect
from tests.factories import api_client
from tests.labeling.test_h55_import_reasons import api_import

pytestmark = pytest.mark.django_db

PAIRS = 16  # at a holdout fraction of 0.5, each pair split by its own phash straddles half the time


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def phash(data: bytes) -> int:
    """The perceptual hash the import computes for these bytes."""
    return int(image_inspect(data, limits=Limits.from_settings()).phash, 16)


def bits(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@cache
def moved_pairs(n: int = PAIRS) -> tuple[tuple[bytes, bytes], ...]:
    """`n` (original PNG, copy) pairs of distinct pictures whose copy, saved as the tester's were (RGB, resized to 80 %
    as a JPEG of quality 80, or to half at quality 70), got a phash 2-4 bits from its original's."""
    found: list[tuple[bytes, bytes]] = []
    seed = 0
    while len(found) < n:
        rng = np.random.default_rng(seed)
        image = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
        image = image.resize((160, 120), Image.Resampling.BICUBIC)
        small = image.resize((128, 96)) if seed % 2 else image.resize((64, 48))
        original, copy = encode(image, "PNG"), encode(small, "JPEG", quality=80 if seed % 2 else 70)
        if 2 <= bits(phash(original), phash(copy)) <= 4:
            found.append((original, copy))
        seed += 1
    hashes = [phash(original) for original, _ in found]
    assert min(bits(a, b) for k, a in enumerate(hashes) for b in hashes[k + 1 :]) > 12  # unrelated to each other
    return tuple(found)


def items(manager, project) -> list[dict]:
    """The project's items as GET /api/projects/<slug>/items/ lists them."""
    return api_client(manager).get(f"/api/projects/{project.slug}/items/", {"page_size": 1000}).json()["results"]


def splits_by_pair(manager, project) -> dict[int, set[str]]:
    """pair number -> the splits its images are in (names 'NN-original.png', 'NN-copy.jpg')."""
    found: dict[int, set[str]] = {}
    for row in items(manager, project):
        found.setdefault(int(row["original_name"][:2]), set()).add(row["split"])
    return found


def assert_pairs_share_a_split(manager, project) -> None:
    by_pair = splits_by_pair(manager, project)
    assert len(by_pair) == PAIRS
    assert sorted(k for k, splits in by_pair.items() if len(splits) > 1) == []
    assert {split for splits in by_pair.values() for split in splits} == {Split.TRAIN, Split.HOLDOUT}


def originals() -> dict[str, bytes]:
    return {f"{k:02d}-original.png": original for k, (original, _) in enumerate(moved_pairs())}


def copies() -> dict[str, bytes]:
    return {f"{k:02d}-copy.jpg": copy for k, (_, copy) in enumerate(moved_pairs())}


def test_resized_copies_imported_later_join_their_originals_split(
    project_factory, member_of, django_capture_on_commit_callbacks
):
    # Given a project keeping half of its images for the holdout, and 16 pictures imported through the API
    project = project_factory(holdout_fraction=0.5)
    manager = member_of(project, Role.MANAGER)
    assert api_import(manager, project, django_capture_on_commit_callbacks, originals()).result["imported"] == PAIRS

    # When their copies, resized and saved as JPEGs (each phash 2-4 bits from its original's), are imported
    result = api_import(manager, project, django_capture_on_commit_callbacks, copies()).result

    # Then they are imported (other files, other phashes), each in its original's split
    assert (result["imported"], result["duplicates"]) == (PAIRS, 0)
    rows = {row["original_name"]: row["phash"] for row in items(manager, project)}
    assert all(rows[f"{k:02d}-original.png"] != rows[f"{k:02d}-copy.jpg"] for k in range(PAIRS))
    assert_pairs_share_a_split(manager, project)


@pytest.mark.parametrize("batch_files", [batches.BATCH_FILES, 7], ids=["one batch", "batches of 7"])
def test_copies_in_one_upload_share_a_split_whatever_the_order_of_the_files(
    project_factory, member_of, membership_factory, django_capture_on_commit_callbacks, monkeypatch, batch_files
):
    # Given two projects with the same holdout fraction, and 16 pictures with a resized copy of each
    monkeypatch.setattr(batches, "BATCH_FILES", batch_files)
    first, second = project_factory(holdout_fraction=0.5), project_factory(holdout_fraction=0.5)
    manager = member_of(first, Role.MANAGER)
    membership_factory(user=manager, project=second, role=Role.MANAGER)
    files = {**originals(), **copies()}
    in_order = dict(sorted(files.items()))  # each copy right after its original

    # When one project gets them in order, copies right after their originals, and the other in reverse
    api_import(manager, first, django_capture_on_commit_callbacks, in_order)
    api_import(manager, second, django_capture_on_commit_callbacks, dict(reversed(in_order.items())))

    # Then in each, every picture and its copy share a split
    assert_pairs_share_a_split(manager, first)
    assert_pairs_share_a_split(manager, second)
    # ... and in one batch each file gets the same split in both (in batches of 7, a copy read in a batch before its
    # original's is stored first, and the original follows it)
    if batch_files >= len(files):
        assert {row["sha256"]: row["split"] for row in items(manager, first)} == {
            row["sha256"]: row["split"] for row in items(manager, second)
        }


def flipped(value: int, count: int, start: int = 0) -> str:
    """`value` with `count` of its bits flipped, from bit `start`, as 16 hex digits."""
    return f"{value ^ sum(1 << (start + k) for k in range(count)):016x}"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({Split.HOLDOUT: 0}, Split.HOLDOUT),  # the same phash, as before
        ({Split.HOLDOUT: 2}, Split.HOLDOUT),
        ({Split.HOLDOUT: 4}, Split.HOLDOUT),  # NEAR_BITS
        ({Split.HOLDOUT: 6}, Split.TRAIN),  # an unrelated picture: the image's own phash draws its split
        ({Split.HOLDOUT: 2, Split.TRAIN: 4}, Split.HOLDOUT),  # the nearest decides
        ({Split.HOLDOUT: 4, Split.TRAIN: 2}, Split.TRAIN),
    ],
    ids=["same phash", "2 bits", "4 bits", "6 bits", "nearer holdout", "nearer train"],
)
def test_an_image_takes_the_split_of_the_nearest_stored_image_within_four_bits(
    project_factory, member_of, item_factory, django_capture_on_commit_callbacks, stored, expected
):
    # Given a project that keeps nothing more for the holdout (an image's own phash draws train), whose items
    # include images at these distances from a new picture's phash, in these splits
    project = project_factory(holdout_fraction=0.0)
    manager = member_of(project, Role.MANAGER)
    picture = moved_pairs()[0][0]
    for n, (split, distance) in enumerate(stored.items()):
        item_factory(project=project, split=split, phash=flipped(phash(picture), distance, start=8 * n))

    # When the picture is imported
    result = api_import(manager, project, django_capture_on_commit_callbacks, {"new.png": picture}).result

    # Then it joins the nearest stored image's split when one is 4 bits or fewer away, else its own
    assert result["imported"] == 1
    assert {row["original_name"]: row["split"] for row in items(manager, project)}["new.png"] == expected


def test_a_copy_in_both_splits_at_the_same_distance_goes_to_train(
    project_factory, member_of, item_factory, django_capture_on_commit_callbacks
):
    # Given a picture whose nearest stored images, 2 bits away each, are one in the holdout and one in train
    project = project_factory(holdout_fraction=0.999)
    manager = member_of(project, Role.MANAGER)
    picture = moved_pairs()[0][0]
    item_factory(project=project, split=Split.HOLDOUT, phash=flipped(phash(picture), 2, start=0))
    item_factory(project=project, split=Split.TRAIN, phash=flipped(phash(picture), 2, start=8))

    # When it is imported into a project whose holdout would otherwise take nearly everything
    api_import(manager, project, django_capture_on_commit_callbacks, {"new.png": picture})

    # Then it goes to train: the holdout gains no picture the model has seen
    assert {row["original_name"]: row["split"] for row in items(manager, project)}["new.png"] == Split.TRAIN


def test_a_copy_sent_to_the_front_of_the_queue_stays_with_its_holdout_original(project_factory, tmp_path):
    # Given a project whose holdout holds a picture, and whose train split holds another
    project = project_factory(holdout_fraction=0.5)
    (held, held_copy), (trained, trained_copy) = moved_pairs()[0], moved_pairs()[1]
    item_create_from_bytes(project=project, name="held.png", data=held, split=Split.HOLDOUT)
    item_create_from_bytes(project=project, name="trained.png", data=trained, split=Split.TRAIN)

    # When resized copies of both (phashes moved 2-4 bits) go to the front of the labeling queue, as send to queue does
    sent = tmp_path / "sent"
    sent.mkdir()
    (sent / "held-copy.jpg").write_bytes(held_copy)
    (sent / "trained-copy.jpg").write_bytes(trained_copy)
    job = import_job_create(
        project=project, sources=[{"type": "folder", "path": str(sent), "name": "x"}], to_front=True
    )
    import_run(job_id=job.pk)

    # Then the holdout picture's copy stays in the holdout (never trained on); the other goes to train as sent
    assert dict(Item.objects.filter(project=project).values_list("original_name", "split")) == {
        "held.png": Split.HOLDOUT, "held-copy.jpg": Split.HOLDOUT,
        "trained.png": Split.TRAIN, "trained-copy.jpg": Split.TRAIN,
    }  # fmt: skip

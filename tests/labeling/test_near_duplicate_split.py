"""Near-duplicates never straddle the split: an image with the perceptual hash of one already in the project (or
earlier in the same import) gets that image's split, so the holdout never grades the model on a copy of a training
image; exact copies are still refused as duplicates."""

from __future__ import annotations

import io
from functools import cache

import imagehash
import numpy as np
import pytest
from PIL import Image

from labeling.models import Item, Split
from labeling.services.imports import ImportRejected, batches, import_job_create, import_run, item_create_from_bytes

pytestmark = pytest.mark.django_db

PAIRS = 40  # at a holdout fraction of 0.5, a split drawn per file sends about half of 40 pairs to both sides


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def resaved(image: Image.Image, way: int) -> bytes:
    """The same picture saved again as people do: larger, as a JPEG, or smaller as a JPEG."""
    if way == 0:
        return encode(image.resize((256, 192), Image.Resampling.LANCZOS), "PNG")
    if way == 1:
        return encode(image, "JPEG", quality=90)
    return encode(image.resize((96, 72), Image.Resampling.LANCZOS), "JPEG", quality=85)


@cache
def pairs(n: int = PAIRS) -> tuple[tuple[bytes, bytes], ...]:
    """`n` (original PNG, re-saved copy) pairs of distinct random pictures whose copy keeps the perceptual hash.

    A copy moves a hash bit that sat near the median now and then (distance 1-2, not handled): those are passed
    over, as the rule is about exact phash matches. imagehash.phash is the hash the import computes.
    """
    found: list[tuple[bytes, bytes]] = []
    seed = 0
    while len(found) < n:
        rng = np.random.default_rng(seed)
        grid = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(grid, "RGB").resize((128, 96), Image.Resampling.BICUBIC)
        original, copy = encode(image, "PNG"), resaved(image, seed % 3)
        if imagehash.phash(Image.open(io.BytesIO(original))) == imagehash.phash(Image.open(io.BytesIO(copy))):
            found.append((original, copy))
        seed += 1
    return tuple(found)


def write(folder, files: dict[str, bytes]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def run_import(project, folder, **kwargs) -> dict:
    job = import_job_create(project=project, sources=[{"type": "folder", "path": str(folder), "name": "x"}], **kwargs)
    return import_run(job_id=job.pk)


def splits_by_pair(project) -> dict[int, set[str]]:
    """pair number -> the splits its two images are in (names are 'NN-original.*' and 'NN-copy.*')."""
    found: dict[int, set[str]] = {}
    for name, split in Item.objects.filter(project=project).values_list("original_name", "split"):
        found.setdefault(int(name.rsplit("/", 1)[-1][:2]), set()).add(split)
    return found


def extension(data: bytes) -> str:
    return ".jpg" if data.startswith(b"\xff\xd8") else ".png"


def copy_name(k: int, data: bytes) -> str:
    return f"{k:02d}-copy{extension(data)}"


def assert_pairs_share_a_split(project, n: int = PAIRS) -> None:
    items = Item.objects.filter(project=project)
    assert items.count() == 2 * n
    assert items.values("phash").distinct().count() == n  # each pair one phash: the copies are near-duplicates
    by_pair = splits_by_pair(project)
    straddling = sorted(k for k, splits in by_pair.items() if len(splits) > 1)
    assert straddling == []
    # ... and the holdout still gets its share: some pictures on each side
    assert {split for splits in by_pair.values() for split in splits} == {Split.TRAIN, Split.HOLDOUT}


def test_copies_imported_later_take_the_split_of_their_originals(project_factory, tmp_path):
    # Given a project keeping half of its images for the holdout, and 40 pictures imported
    project = project_factory(holdout_fraction=0.5)
    originals = write(tmp_path / "a", {f"{k:02d}-original.png": o for k, (o, _) in enumerate(pairs())})
    assert run_import(project, originals)["imported"] == PAIRS

    # When the same pictures, re-saved at another size or JPEG quality, come in a second import
    copies = write(tmp_path / "b", {copy_name(k, c): c for k, (_, c) in enumerate(pairs())})
    result = run_import(project, copies)

    # Then they are imported (they are other files), each in the split of its original
    assert (result["imported"], result["duplicates"]) == (PAIRS, 0)
    assert_pairs_share_a_split(project)


@pytest.mark.parametrize("upload", ["folder import", "one by one"])
def test_copies_of_pictures_stored_before_the_rule_follow_their_stored_split(project_factory, tmp_path, upload):
    # Given 40 pictures stored in splits an earlier rule chose (here: every other one in the holdout)
    project = project_factory(holdout_fraction=0.5)
    for k, (original, _) in enumerate(pairs()):
        split = Split.HOLDOUT if k % 2 else Split.TRAIN
        item_create_from_bytes(project=project, name=f"{k:02d}-original.png", data=original, split=split)

    # When their re-saved copies are imported
    copies = {copy_name(k, c): c for k, (_, c) in enumerate(pairs())}
    if upload == "folder import":
        run_import(project, write(tmp_path / "b", copies))
    else:
        for name, data in copies.items():
            item_create_from_bytes(project=project, name=name, data=data)

    # Then each copy joins its original, which stays where it was
    assert_pairs_share_a_split(project)
    assert {k: splits.pop() for k, splits in splits_by_pair(project).items()} == {
        k: Split.HOLDOUT if k % 2 else Split.TRAIN for k in range(PAIRS)
    }


@pytest.mark.parametrize("batch_files", [batches.BATCH_FILES, 7], ids=["one batch", "batches of 7"])
def test_copies_in_one_import_share_a_split_within_and_across_batches(
    project_factory, tmp_path, monkeypatch, batch_files
):
    # Given one folder holding 40 pictures and a re-saved copy of each
    monkeypatch.setattr(batches, "BATCH_FILES", batch_files)
    project = project_factory(holdout_fraction=0.5)
    files = {}
    for k, (original, copy) in enumerate(pairs()):
        files[f"{k:02d}-original.png"] = original
        files[copy_name(k, copy)] = copy

    # When it is imported
    result = run_import(project, write(tmp_path / "all", files))

    # Then every picture and its copy are on the same side of the split
    assert result["imported"] == 2 * PAIRS
    assert_pairs_share_a_split(project)


def test_single_file_uploads_follow_the_same_rule(project_factory):
    # Given a project keeping half of its images for the holdout, and 40 pictures uploaded one by one
    project = project_factory(holdout_fraction=0.5)
    for k, (original, _) in enumerate(pairs()):
        item_create_from_bytes(project=project, name=f"{k:02d}-original.png", data=original)

    # When their re-saved copies are uploaded one by one
    for k, (_, copy) in enumerate(pairs()):
        item_create_from_bytes(project=project, name=copy_name(k, copy), data=copy)

    # Then each copy is in its original's split
    assert_pairs_share_a_split(project)


def test_reimporting_the_same_bytes_is_still_a_refused_duplicate_and_moves_nothing(project_factory, tmp_path):
    # Given 40 pictures and their copies imported into a project
    project = project_factory(holdout_fraction=0.5)
    files = {f"{k:02d}-original.png": o for k, (o, _) in enumerate(pairs())}
    files.update({copy_name(k, c): c for k, (_, c) in enumerate(pairs())})
    folder = write(tmp_path / "all", files)
    run_import(project, folder)
    before = dict(Item.objects.filter(project=project).values_list("original_name", "split"))

    # When the same folder is imported again, and one of its files uploaded on its own
    result = run_import(project, folder)
    with pytest.raises(ImportRejected) as refused:
        item_create_from_bytes(project=project, name="again.png", data=pairs()[0][0])

    # Then every file is skipped as a duplicate of the one stored, and no split changed
    assert (result["imported"], result["duplicates"]) == (0, 2 * PAIRS)
    assert refused.value.reason == "duplicate of 00-original.png"
    assert dict(Item.objects.filter(project=project).values_list("original_name", "split")) == before


def test_the_same_bytes_get_the_same_split_in_any_project_and_any_order(project_factory, tmp_path):
    # Given two projects with the same holdout fraction
    first, second = project_factory(holdout_fraction=0.5), project_factory(holdout_fraction=0.5)

    # When one imports the originals then the copies, and the other the copies then the originals
    originals = write(tmp_path / "a", {f"{k:02d}-original.png": o for k, (o, _) in enumerate(pairs())})
    copies = write(tmp_path / "b", {copy_name(k, c): c for k, (_, c) in enumerate(pairs())})
    run_import(first, originals)
    run_import(first, copies)
    run_import(second, copies)
    run_import(second, originals)

    # Then each file is in the same split in both
    def splits(project):
        return dict(Item.objects.filter(project=project).values_list("sha256", "split"))

    assert splits(first) == splits(second)


def test_a_picture_sent_to_the_front_of_the_queue_stays_with_its_holdout_copy(project_factory, tmp_path):
    # Given a project whose holdout holds a picture, and one whose train split holds another
    project = project_factory(holdout_fraction=0.5)
    (held, held_copy), (trained, trained_copy) = pairs()[0], pairs()[1]
    item_create_from_bytes(project=project, name="held.png", data=held, split=Split.HOLDOUT)
    item_create_from_bytes(project=project, name="trained.png", data=trained, split=Split.TRAIN)

    # When copies of both are sent to the front of the labeling queue (as send to queue does)
    held_name, trained_name = "held-copy" + extension(held_copy), "trained-copy" + extension(trained_copy)
    run_import(project, write(tmp_path / "sent", {held_name: held_copy, trained_name: trained_copy}), to_front=True)

    # Then the holdout picture's copy stays in the holdout (never trained on); the other goes to train as sent
    splits = dict(Item.objects.filter(project=project).values_list("original_name", "split"))
    assert splits == {
        "held.png": Split.HOLDOUT, held_name: Split.HOLDOUT,
        "trained.png": Split.TRAIN, trained_name: Split.TRAIN,
    }  # fmt: skip


def test_a_copy_of_a_picture_already_on_both_sides_goes_to_train(project_factory, tmp_path):
    # Given a picture stored before near-duplicates shared a split: once in the holdout, once (re-saved) in train
    project = project_factory(holdout_fraction=0.5)
    image = Image.open(io.BytesIO(pairs()[0][0]))
    item_create_from_bytes(project=project, name="held.png", data=pairs()[0][0], split=Split.HOLDOUT)
    item_create_from_bytes(project=project, name="trained.png", data=pairs()[0][1], split=Split.TRAIN)
    third = encode(image, "PNG", compress_level=0)  # other bytes, the same pixels
    assert imagehash.phash(Image.open(io.BytesIO(third))) == imagehash.phash(image)

    # When a third copy is imported
    item = item_create_from_bytes(project=project, name="third.png", data=third)

    # Then it goes to train: the holdout gains no picture the model has seen
    assert item.split == Split.TRAIN


def test_an_exports_val_part_keeps_a_picture_and_its_copies_together():
    """Within train, the val part was chosen by the sha256: a pair all in train could straddle train and val."""
    from labeling.selectors.exports import split_for

    phashes = [f"{n:016x}" for n in range(0, 2**40, 2**33)]
    for phash in phashes:
        sides = {split_for(sha256=f"{phash}{copy}", item_split="train", val_fraction=0.5, phash=phash) for copy in "ab"}
        assert len(sides) == 1, phash
    old_rule = [len({split_for(sha256=f"{p}{c}", item_split="train", val_fraction=0.5) for c in "ab"}) for p in phashes]
    assert max(old_rule) == 2  # by the content hash alone, some pairs straddle

"""A project's embedding cache belongs to one project row: a database created afresh over an old data folder reuses
project pks and item ids, and must not be handed the old images' embeddings."""

from datetime import timedelta

import pytest

from labeling.models import Project
from tests.factories import ProjectFactory, png_bytes
from training.constants import project_cache_dir
from training.ml.config import RoundConfig
from training.ml.embeddings import EmbeddingStore

pytestmark = pytest.mark.django_db

CFG = RoundConfig(backbone="resnet10t", weights="none", image_size=32, num_workers=0, class_names=["a", "b"])


def images(tmp_path, name: str, seeds: list[int]) -> list[str]:
    folder = tmp_path / name
    folder.mkdir()
    paths = []
    for seed in seeds:
        (folder / f"{seed}.png").write_bytes(png_bytes(seed))
        paths.append(str(folder / f"{seed}.png"))
    return paths


def test_a_database_made_afresh_over_an_old_data_folder_does_not_get_the_old_images_embeddings(tmp_path):
    # Given a project whose first round embedded its two images (item ids 1 and 2)
    project = ProjectFactory()
    old = images(tmp_path, "old", [1, 2])
    assert EmbeddingStore(project_cache_dir(project)).compute([1, 2], old, CFG) == 2
    # And the same project asks again: its cache is kept, nothing is embedded twice
    assert EmbeddingStore(project_cache_dir(project)).compute([1, 2], old, CFG) == 0

    # When the database is deleted and made again, and a new project gets the same pk and its items the same ids
    Project.objects.filter(pk=project.pk).update(created_at=project.created_at + timedelta(days=3))
    reborn = Project.objects.get(pk=project.pk)
    new = images(tmp_path, "new", [7, 8])

    # Then the new project's images are embedded, not read from the old project's cache
    folder = project_cache_dir(reborn)
    assert EmbeddingStore(folder).compute([1, 2], new, CFG) == 2
    assert [p.name for p in folder.parent.iterdir()] == ["cache"]  # the old cache is gone, not kept beside it
    assert f"project {reborn.pk} created {reborn.created_at.isoformat()}" in (folder / "owner").read_text()


def test_a_cache_made_before_it_named_its_owner_is_adopted_with_its_embeddings(tmp_path):
    # Given a project's cache written by an earlier version (no owner file)
    project = ProjectFactory()
    paths = images(tmp_path, "imgs", [3, 4])
    folder = project_cache_dir(project)
    EmbeddingStore(folder).compute([10, 11], paths, CFG)
    (folder / "owner").unlink()

    # When a round asks for the cache again, Then every embedding is still there and the folder now names its owner
    assert EmbeddingStore(project_cache_dir(project)).compute([10, 11], paths, CFG) == 0
    assert (folder / "owner").read_text().startswith(f"project {project.pk} created ")

"""Facts of the training app that runs, rounds, scoring and selectors share: run modes and where data lives.

Kept apart from the run state machine (services/runs.py) so that any module can import them without a cycle.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def data_root() -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT)


def project_cache_dir(project) -> Path:
    """The project's feature store (cached embeddings); shared by every run and scoring job."""
    return data_root() / "projects" / str(project.pk) / "cache"

"""Making a version active by hand ("make active" on the model page): the switch, and a re-score of the pool with
it, so the labeling queue's order and suggestions follow the version made active, not the one before."""

from __future__ import annotations

from django.db import transaction

from labeling.models import Job
from training.models import ModelVersion
from training.services.quality import pool_score_job_enqueue
from training.services.rounds import model_version_activate


def model_version_activate_rescored(*, version: ModelVersion, created_by=None) -> Job:
    """Make `version` active and queue the pool's re-scoring (the SCORE Job the model page shows with its bar).

    One transaction: the switch and the Job commit together, and the scoring task is sent after the commit; it
    scores with this version even when it waits behind a run (whose own version then stays inactive: a version
    made active by hand during a run stands, promotion.made_active_by_hand_during), and re-ranks the queue unless
    another version is made active before it runs. A broker outage leaves the version active and the Job failed
    with its reason (the page offers "Re-score the pool")."""
    with transaction.atomic():
        model_version_activate(version=version, made_by=created_by)
        job = pool_score_job_enqueue(project=version.project, created_by=created_by, version=version)
    job.refresh_from_db()  # the send ran on commit: a broker outage has failed the job by now
    return job

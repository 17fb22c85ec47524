"""The production predictions least like the project's images: "most drifted" for send to queue.

A prediction's score is its mean RBF similarity to the version's reference embeddings (a random sample of the
project's images under the served ONNX model, as the drift check embedded them; same kernel and median-heuristic
bandwidth as the drift test): the lowest scores are the images the project's data covers least, the ones drift is
made of. Reads only the reference a drift check cached (numpy; the web process never runs the model).
"""

from __future__ import annotations

import numpy as np
from django.core.exceptions import ValidationError

from labeling.models import Project
from serving.models import PredictionLog
from serving.selectors.send_selection import Selection, send_candidates
from serving.services.drift import MIN_ON_DEMAND, embedded_predictions, most_drifted_elsewhere
from serving.services.drift_reference import reference_cached
from serving.services.drift_stats import median_bandwidth, squared_distances
from training.ml.export_files import ONNX_FILES
from training.models import ModelVersion

POOL = 2000  # newest candidates scored (a 2000 x 1000 kernel: well under a second)


def predictions_most_drifted(*, project: Project, selection: Selection, limit: int) -> list[PredictionLog]:
    """The `limit` candidates with the lowest similarity to the reference, least similar first. ValidationError
    when no drift check has embedded the reference of the version yet (nothing to compare with): the message says
    what would embed it, and names another version whose reference is there."""
    active = ModelVersion.objects.filter(project=project, active=True).values_list("number", flat=True).first()
    number = selection.version_number
    if number is None:
        if active is None:
            raise ValidationError("Most drifted needs an active model version.")
        number = active
    version = ModelVersion.objects.filter(project=project, number=number).only("pk").first()
    if version is None:
        raise ValidationError(f"No model version {number} in this project.")
    cached = reference_cached(version_pk=version.pk)
    if cached is None:
        raise ValidationError(_no_reference(project=project, selection=selection, number=number, active=active))
    reference, model_file = cached
    candidates = send_candidates(project=project, selection=selection).filter(version_number=number)
    if model_file:  # the predictions the same ONNX file answered (rows from before files were logged: FP32's)
        candidates = candidates.filter(model_file__in=[model_file, *([""] if model_file == ONNX_FILES["fp32"] else [])])
    rows = list(candidates.exclude(embedding=None).order_by("-created_at").values_list("pk", "embedding")[:POOL])
    rows = [(pk, np.frombuffer(bytes(e), dtype=np.float16)) for pk, e in rows if e]
    rows = [(pk, e) for pk, e in rows if e.shape[0] == reference.shape[1]]
    if not rows:
        return []
    production = np.stack([e for _, e in rows]).astype(np.float32)
    bandwidth = median_bandwidth(squared_distances(reference, reference))
    similarity = np.exp(-squared_distances(production, reference) / bandwidth).mean(axis=1)
    order = np.argsort(similarity, kind="stable")[:limit]
    picked = [rows[i][0] for i in order]
    by_pk = PredictionLog.objects.in_bulk(picked)
    return [by_pk[pk] for pk in picked]


def _no_reference(*, project: Project, selection: Selection, number: int, active: int | None) -> str:
    """Why version `number` has no reference to compare with, what would make one, and the way out now."""
    text = f"Most drifted compares production images with the project's images as model v{number} sees them"
    embedded = embedded_predictions(project_id=project.pk, version_number=number)
    if number != active:
        now = f", v{active}" if active is not None else ""
        text += f", and no drift check has embedded them (a check embeds the active version's only{now})."
    elif embedded >= MIN_ON_DEMAND:
        text += ": run a drift check first (the Monitoring page's button or manage.py drift_check), then send again."
    elif embedded >= 2:
        text += (
            f": run a drift check first, then send again. The Monitoring page's button needs {MIN_ON_DEMAND} "
            f"predictions of v{number} that carry an embedding and {embedded} do; manage.py drift_check "
            f"{project.slug} --min-predictions {embedded} checks those."
        )
    else:
        text += (
            f", and no drift check can embed them until the prediction service has answered with v{number}: a check "
            f"needs {MIN_ON_DEMAND} of its predictions that carry an embedding (2 with manage.py drift_check "
            f"--min-predictions) and {embedded} do."
        )
    elsewhere = most_drifted_elsewhere(project=project, selection=selection, skip=number)
    return f"{text} {elsewhere}" if elsewhere else text

"""Batch inference: run a model version over a zip or a server folder and write a CSV of predictions.

torch is imported only inside inference_predict (workers and commands); the web process only calls
inference_start. Shares the job claim and preprocessing of services/exports.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from labeling.models import Job, JobKind, Project
from labeling.services.dispatch import task_send_on_commit
from labeling.services.exports import export_storage
from labeling.services.exports.csv_safe import csv_row
from labeling.services.job_limits import job_create_bounded
from labeling.services.jobs import job_claim, job_finish, job_progress
from training.ml.export_files import predicted_labels
from training.models import ModelVersion
from training.selectors.classes import version_class_paths
from training.services.exports import (
    ModelExportError,
    Progress,
    checkpoint_dir,
    model_version_pick,
    preprocessing_of,
)

logger = logging.getLogger(__name__)

INFERENCE_BATCH = 32


def _inference_dir(job_id: int) -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT) / "inference" / str(job_id)


def inference_start(
    *, project: Project, user, upload: UploadedFile | None = None, folder: str = "", number: int | None = None
) -> Job:
    """Create a batch inference Job over an uploaded zip or a server folder. A server folder must be one `user` may
    read for `project` (staff, or a folder staff granted to the project: labeling.permissions.server_folder_resolve),
    checked before anything else so that the answer never depends on the project's models."""
    from labeling.permissions import server_folder_resolve

    if (upload is None) == (not folder):
        raise ValidationError("Give either a zip file or a server folder.")
    resolved = server_folder_resolve(user=user, project=project, path=folder) if folder else None
    version = model_version_pick(project=project, number=number)
    params: dict[str, Any] = {"version": version.number, "version_id": version.pk}
    if resolved is not None:
        params["folder"] = str(resolved)
    else:
        if not (upload.name or "").lower().endswith(".zip"):
            raise ValidationError("Upload a .zip of images.")
        if upload.size > settings.LABELLOOP_MAX_ZIP_BYTES:
            raise ValidationError("The zip is larger than LABELLOOP_MAX_ZIP_BYTES.")
        params["upload_name"] = upload.name[:200]
    # The same version over the same folder or the same zip bytes is the same work (job_limits coalesces it).
    inputs = {"version_id": params.pop("version_id"), "folder": params.pop("folder", "")}
    if upload is not None:
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        inputs["upload_sha256"] = digest.hexdigest()
    with transaction.atomic():
        job = job_create_bounded(project=project, kind=JobKind.INFERENCE, user=user, inputs=inputs, params=params)
        if job.coalesced:
            return job
        if upload is not None:
            target = _inference_dir(job.pk)
            target.mkdir(parents=True, exist_ok=True)
            with (target / "input.zip").open("wb") as fh:
                for chunk in upload.chunks():
                    fh.write(chunk)
            job.params["zip"] = str(target / "input.zip")
            job.save(update_fields=["params"])
        task_send_on_commit("training.tasks.inference_task", job.pk, job_id=job.pk)
    return job


def inference_run(*, job_id: int, progress: Progress | None = None) -> dict:
    """Run a batch inference Job: every readable image gets a row; bad files are listed in job.errors."""
    job = job_claim(job_id=job_id)
    if job is None:
        return Job.objects.get(pk=job_id).result
    version = ModelVersion.objects.filter(project=job.project, pk=job.params.get("version_id")).first()
    try:
        if version is None:
            raise ModelExportError("The model version no longer exists.")
        result = inference_predict(version=version, job=job, progress=progress)
    except (ModelExportError, FileNotFoundError, ValueError) as exc:
        job_finish(job=job, error=f"Inference failed: {exc}")
        return {}
    except Exception as exc:
        logger.exception("inference job %s failed", job_id)
        job_finish(job=job, error=f"Inference failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if job.params.get("zip"):
            shutil.rmtree(_inference_dir(job.pk), ignore_errors=True)
    # The last progress line ("Loading model v1", "40 / 80 files") would otherwise stay on the finished job.
    job.message = f"{result['predicted']} files predicted with v{result['version']}, {result['rejected']} rejected"
    job_finish(job=job, result=result)
    return result


def inference_predict(*, version: ModelVersion, job: Job, progress: Progress | None = None) -> dict:
    """Score the job's files with `version`; write the CSV to the export storage. Needs torch."""
    import torch

    from imaging.pixels import decoded_rgb
    from labeling.services.imports import ImportRejected, Limits, folder_entries, image_open_checked, zip_entries
    from labeling.services.imports.validation import entry_over_limit
    from training.ml.checkpoint import load_checkpoint, serving_model
    from training.ml.data import build_transform
    from training.ml.strategies import margin

    errors = job.errors
    if job.params.get("zip"):
        entries = zip_entries(
            Path(job.params["zip"]), labels_from_folders=False, display=job.params.get("upload_name", "upload"),
            errors=errors,
        )  # fmt: skip
    else:
        entries = folder_entries(Path(job.params["folder"]), labels_from_folders=False, errors=errors)
    total = len(entries)
    job_progress(job=job, done=0, total=total, message=f"Loading model v{version.number}")
    model, cfg = load_checkpoint(checkpoint_dir(version))
    model = serving_model(model.float().eval(), cfg)
    class_names = version_class_paths(version, cfg.get("class_names"))  # stored paths, as config.json's
    pre = preprocessing_of(cfg)
    transform = build_transform(
        {"interpolation": pre["interpolation"], "mean": tuple(pre["mean"]), "std": tuple(pre["std"])},
        pre["image_size"],
        is_training=False,
        crop_pct=pre["crop_pct"],
        squash_aspect=pre["squash_aspect"],
    )
    multi = bool(cfg.get("multi_label", version.project.is_multi_label))  # as the export reads it
    limits = Limits.from_settings()
    buffer = io.StringIO()
    # CRLF (RFC 4180): the csv module then quotes any cell holding \r or \n, which cannot start a new row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    # A multi-label model predicts a set: `predicted_classes` (a JSON list, unambiguous whatever a class name holds)
    # is export_files.predicted_labels, the service's `labels`; predicted_class stays its top class.
    extra = ["predicted_classes"] if multi else []
    writer.writerow(csv_row(["file_name", "predicted_class", "confidence", *extra, *[f"p_{n}" for n in class_names]]))
    batch_names: list[str] = []
    batch_tensors: list = []
    written = 0

    def flush() -> None:
        nonlocal written
        if not batch_tensors:
            return
        with torch.inference_mode():
            logits = model(torch.stack(batch_tensors)).float()
            probs = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
        # Confidence as the prediction service logs it: the top class's probability; for a multi-label model its least
        # sure class decision's distance from a coin flip, min |2p - 1| (serving.wsgi_predict says why).
        sure = 1.0 - margin(probs.numpy(), multi_label=True) if multi else probs.max(dim=-1).values.numpy()
        for name, row, confidence in zip(batch_names, probs.tolist(), sure.tolist(), strict=True):
            best = max(range(len(row)), key=row.__getitem__)
            given = [json.dumps(predicted_labels(row, class_names))] if multi else []
            cells = [name, class_names[best], f"{confidence:.6f}", *given, *[f"{p:.6f}" for p in row]]
            writer.writerow(csv_row(cells))
            written += 1
        batch_names.clear()
        batch_tensors.clear()

    for done, entry in enumerate(entries, start=1):
        try:
            data = entry.read(limits.max_bytes)
            if len(data) > limits.max_bytes:
                raise ImportRejected(entry_over_limit(entry.size, limits.max_bytes))
            # The import's checks (bombs, truncation, non-images: a clear reason per file) and one decode.
            image = image_open_checked(data, limits=limits, use=lambda img, _fmt: decoded_rgb(img))
            batch_tensors.append(transform(image))
            batch_names.append(entry.name)
        except ImportRejected as exc:
            errors.append({"name": entry.name, "reason": exc.reason})
        except Exception as exc:  # a decoder surprise is a bad file, never a crashed job
            errors.append({"name": entry.name, "reason": f"could not be read ({type(exc).__name__}: {exc})"[:300]})
        if len(batch_tensors) >= INFERENCE_BATCH:
            flush()
        if done % INFERENCE_BATCH == 0 or done == total:
            job_progress(job=job, done=done, total=total, message=f"{done} / {total} files")
            if progress:
                progress(done, total)
    flush()
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    storage = export_storage()
    key = storage.save(
        f"{job.project.slug}/predictions-{job.project.slug}-v{version.number}-{stamp}-job{job.pk}.csv",
        File(io.BytesIO(buffer.getvalue().encode())),
    )
    return {
        "version": version.number,
        "predicted": written,
        "rejected": len(errors),
        "bytes": storage.size(key),
        "files": [key],
    }

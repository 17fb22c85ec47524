"""Model exports: a model version as a zip a user can serve elsewhere.

The zip holds model.safetensors + config.json (timm architecture, class names, preprocessing), model.onnx
(opset 17, dynamic batch axis, outputs `logits` and `embedding`, checked against PyTorch with onnxruntime at
export time), model.fp16.onnx, model.int8.onnx and model.int8.vnni.onnx (7-bit and 8-bit weights),
model.torchscript.pt (torch.jit.trace of the same model, checked against PyTorch after a round trip through the
file) (services/export_formats.py: all measured on the project's holdout by the same worker), manifest.json
(files, checksums, the measurements) and README.md (a model card with holdout metrics, the formats' measurements
and the dataset hash). torch is imported only inside the functions that run in workers or commands; the web
process only calls model_export_start. Batch inference lives in services/inference.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.utils import timezone

from labeling.constants import Progress
from labeling.models import Job, JobKind, Project
from labeling.services.dispatch import task_send_on_commit
from labeling.services.exports import code_version, export_storage
from labeling.services.job_limits import job_create_bounded
from labeling.services.jobs import job_claim, job_finish, job_progress
from training.constants import CONFIG_FILE, WEIGHTS_FILE
from training.ml.export_files import DECIDED_MARGIN, ONNX_OPSET, ONNX_TOLERANCE
from training.models import ModelVersion
from training.selectors.classes import metrics_spelled, version_class_paths
from training.selectors.model_exports import model_export_finished, model_export_inputs
from training.services.export_formats import EXPORT_STEPS, TOLERANCES, formats_build
from training.services.model_card import model_card

logger = logging.getLogger(__name__)


class ModelExportError(Exception):
    """The export could not be made faithfully (e.g. ONNX disagrees with PyTorch); nothing is stored."""


# --------------------------------------------------------------------------------------------
# Shared helpers (no torch)
# --------------------------------------------------------------------------------------------


def checkpoint_dir(version: ModelVersion) -> Path:
    """A local copy of the version's checkpoint folder (storage key, or a legacy local path)."""
    from training.services.artifacts import version_checkpoint_dir

    return version_checkpoint_dir(version=version)


def _weights_named(value: str) -> str:
    """Registered backbone weights as an export states them: the file's name with its sha256 (and normalisation),
    without the server folder it was read from (model.safetensors holds the whole model; the spec says which
    weights it started from). Any other value (a bundled backbone's name) as it is."""
    from training.ml.config import VerifiedWeights

    spec = VerifiedWeights.parse(value)
    return value if spec is None else dataclasses.replace(spec, path=Path(spec.path).name).spec()


def _round_config_named(round_config: dict) -> dict:
    """The round's settings as an export states them: its weights as `_weights_named` does (no server folder)."""
    weights = round_config.get("weights")
    return {**round_config, "weights": _weights_named(weights)} if isinstance(weights, str) else round_config


# config.json's own statement of its output order (JSON has no comments): a consumer must not index by another list.
CLASS_ORDER_NOTE = (
    "Output j of the model (logits[:, j], probabilities[j]) is class_names[j], the model's own order. It is not a "
    "dataset export's class_map (ImageFolder's sorted folder order, of the classes that export holds): match "
    "classes by path, never by index."
)


def preprocessing_of(cfg: dict[str, Any]) -> dict[str, Any]:
    """The eval preprocessing of a checkpoint config, normalized: image_size, mean, std, interpolation, crop_pct,
    squash_aspect, flip_average (predictions are the mean over the image and its mirror)."""
    pre = dict(cfg.get("preprocessing") or {})
    for key in ("image_size", "mean", "std", "interpolation", "crop_pct"):
        if key not in pre and key in cfg:
            pre[key] = cfg[key]
    if "image_size" not in pre and "input_size" in pre:
        pre["image_size"] = int(pre["input_size"][-1])
    missing = [k for k in ("image_size", "mean", "std") if k not in pre]
    if missing:
        raise ModelExportError(f"checkpoint config has no preprocessing {missing}: cannot describe its input")
    return {
        "image_size": int(pre["image_size"]),
        "mean": [float(v) for v in pre["mean"]],
        "std": [float(v) for v in pre["std"]],
        "interpolation": str(pre.get("interpolation") or "bicubic"),
        "crop_pct": float(pre.get("crop_pct") or 1.0),
        # None (checkpoints from before the rule): a plain centre crop whatever the image's shape.
        "squash_aspect": float(pre["squash_aspect"]) if pre.get("squash_aspect") else None,
        "flip_average": bool(pre.get("flip_average", False)),
    }


def model_version_pick(*, project: Project, number: int | None) -> ModelVersion:
    versions = ModelVersion.objects.filter(project=project)
    version = versions.filter(number=number).first() if number is not None else versions.filter(active=True).first()
    if version is None and number is None:
        version = versions.order_by("-number").first()
    if version is None:
        raise ValidationError(
            f"Model version {number} does not exist." if number is not None else "This project has no model yet."
        )
    return version


# --------------------------------------------------------------------------------------------
# Model export
# --------------------------------------------------------------------------------------------


def model_export_start(*, project: Project, user, number: int | None = None, force: bool = False) -> Job:
    """Create a model export Job for version `number` (default: the active one) and enqueue it after commit, or
    return the export of that version with the same inputs already queued or running (`job.coalesced`), or, unless
    `force`, already finished with its zip still stored (`job.reused` and `job.coalesced`: nothing is built again;
    selectors/model_exports.py says what the inputs are). JobLimitReached past the limits of
    labeling.services.job_limits."""
    version = model_version_pick(project=project, number=number)
    inputs = model_export_inputs(version=version)
    if not force and (done := model_export_finished(version=version, inputs=inputs)) is not None:
        done.coalesced = done.reused = True
        return done
    job = job_create_bounded(
        project=project,
        kind=JobKind.EXPORT_MODEL,
        user=user,
        inputs=inputs,
        params={"version": version.number},
        total=EXPORT_STEPS,
    )
    job.reused = False
    if not job.coalesced:
        # A broker outage fails the job with its reason (labeling.services.dispatch), never a job nothing runs.
        task_send_on_commit("training.tasks.model_export_task", job.pk, job_id=job.pk)
    return job


def model_export_run(*, job_id: int, progress: Progress | None = None) -> dict:
    """Run a model export Job (task or command). A finished job is not redone."""
    job = job_claim(job_id=job_id)
    if job is None:
        return Job.objects.get(pk=job_id).result
    version = ModelVersion.objects.filter(project=job.project, pk=job.params.get("version_id")).first()
    if version is None:
        job_finish(job=job, error="The model version no longer exists.")
        return {}

    def report(done: int, total: int, message: str = "") -> None:
        job_progress(job=job, done=done, total=total, message=message or None)
        if progress:
            progress(done, total)

    try:
        result = model_export_build(version=version, progress=report)
    except (ModelExportError, FileNotFoundError, ValueError) as exc:
        job_finish(job=job, error=f"Model export failed: {exc}")
        return {}
    except Exception as exc:
        logger.exception("model export job %s failed", job_id)
        job_finish(job=job, error=f"Model export failed: {type(exc).__name__}: {exc}")
        raise
    job_finish(job=job, result=result)
    return result


def model_export_build(*, version: ModelVersion, progress: Callable[..., None] | None = None) -> dict:
    """Build and store the export zip of one version. Needs torch (worker/command only).

    Raises ModelExportError if the checkpoint is unusable or the ONNX graph disagrees with PyTorch.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    from training.ml.checkpoint import load_checkpoint, mirror_averaged, serving_model
    from training.ml.export_onnx import OUTPUTS, LogitsAndEmbedding, export_fp32
    from training.ml.export_torchscript import TORCHSCRIPT_FILE, export_torchscript, max_logit_diff
    from training.services.export_formats import FILES

    progress = progress or (lambda done, total, message="": None)
    source = checkpoint_dir(version)
    if not (source / CONFIG_FILE).is_file() or not (source / WEIGHTS_FILE).is_file():
        raise ModelExportError(f"checkpoint of v{version.number} is missing ({version.artifact_path})")
    progress(1, EXPORT_STEPS, "Loading checkpoint")
    model, cfg = load_checkpoint(source)
    model = model.float().eval()
    reference = serving_model(model, cfg)  # what the platform predicts with
    graph = LogitsAndEmbedding(model, mirror=mirror_averaged(cfg)).eval()  # the ONNX graph: logits + embedding
    class_names = version_class_paths(version, cfg.get("class_names"))
    if version.class_ids and len(class_names) != len(version.class_ids):
        raise ModelExportError(f"checkpoint has {len(class_names)} classes, the version {len(version.class_ids)}")
    spelled = dict(zip(cfg.get("class_names") or [], class_names, strict=False))  # checkpoint name -> stored path
    pre = preprocessing_of(cfg)
    multi_label = bool(cfg.get("multi_label", version.project.is_multi_label))
    config = {
        **cfg,
        # the checkpoint's own copy of the metrics, named as class_names are (a script joins them by name)
        **({"metrics": metrics_spelled(cfg["metrics"], spelled)} if isinstance(cfg.get("metrics"), dict) else {}),
        **({"backbone_weights": _weights_named(cfg["backbone_weights"])} if cfg.get("backbone_weights") else {}),
        **(
            {"round_config": _round_config_named(cfg["round_config"])}
            if isinstance(cfg.get("round_config"), dict)
            else {}
        ),
        "architecture": cfg["architecture"],
        "num_classes": len(class_names),
        "class_names": class_names,
        "preprocessing": pre,
        # Stated whatever the checkpoint says: the prediction service reads sigmoid or softmax from it.
        "multi_label": multi_label,
        "labelloop": {
            "project": version.project.slug,
            "version": version.number,
            "class_ids": list(version.class_ids),
            "class_order": CLASS_ORDER_NOTE,
            "dataset_hash": version.dataset_hash,
            "label_count": version.label_count,
            "metrics": metrics_spelled(version.metrics, spelled),
            "exported_at": timezone.now().isoformat(),
            "code_version": code_version(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="labelloop-model-export-") as tmp:
        out = Path(tmp)
        shutil.copyfile(source / WEIGHTS_FILE, out / "model.safetensors")
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))

        progress(2, EXPORT_STEPS, "Exporting ONNX and TorchScript")
        size = pre["image_size"]
        export_fp32(graph, out / "model.onnx", image_size=size, opset=ONNX_OPSET)
        export_torchscript(graph, out / TORCHSCRIPT_FILE, image_size=size)

        progress(3, EXPORT_STEPS, "Checking ONNX and TorchScript against PyTorch")
        generator = torch.Generator().manual_seed(1)
        check = torch.randn(3, 3, size, size, generator=generator)  # another batch size: the axis is dynamic
        with torch.inference_mode():
            expected = reference(check).float().numpy()
        session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(["logits"], {"input": check.numpy()})[0]
        diff = float(np.max(np.abs(expected - got))) if got.shape == expected.shape else math.inf
        if not diff < ONNX_TOLERANCE:
            raise ModelExportError(
                f"ONNX output differs from PyTorch by {diff:.3g} (limit {ONNX_TOLERANCE:g}); not exported"
            )
        script_diff = max_logit_diff(out / TORCHSCRIPT_FILE, reference, check)
        if not script_diff < ONNX_TOLERANCE:
            raise ModelExportError(
                f"TorchScript output differs from PyTorch by {script_diff:.3g} (limit {ONNX_TOLERANCE:g}); not exported"
            )
        torchscript = {
            "file": TORCHSCRIPT_FILE,
            "torch_version": torch.__version__,
            "pytorch_max_abs_diff": script_diff,
        }

        formats = formats_build(
            version=version,
            folder=out,
            pre=pre,
            multi_label=multi_label,
            progress=lambda step, message: progress(step, EXPORT_STEPS, message),
        )
        progress(7, EXPORT_STEPS, "Writing model card and manifest")
        (out / "README.md").write_text(
            model_card(
                version=version,
                config=config,
                onnx_diff=diff,
                class_names=class_names,
                formats=formats,
                torchscript=torchscript,
            )
        )
        names = ["model.safetensors", "config.json", *FILES.values(), "README.md"]
        manifest = {
            "project": version.project.slug,
            "version": version.number,
            "dataset_hash": version.dataset_hash,
            "exported_at": config["labelloop"]["exported_at"],
            "code_version": config["labelloop"]["code_version"],
            "files": {name: {"bytes": (out / name).stat().st_size, "sha256": _sha256(out / name)} for name in names},
            "onnx": {"input": "input", "outputs": list(OUTPUTS), "opset": ONNX_OPSET, "pytorch_max_abs_diff": diff},
            "torchscript": {**torchscript, "loader": "torch.jit.load", "outputs": list(OUTPUTS)},
            "tolerances": TOLERANCES,
            "decided_margin": DECIDED_MARGIN,
            "measured": formats,
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        zip_path = out / "export.zip"
        base = f"{version.project.slug}-v{version.number}"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in (*names, "manifest.json"):
                zf.write(out / name, f"{base}/{name}")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        storage = export_storage()
        with zip_path.open("rb") as fh:
            key = storage.save(f"{version.project.slug}/model-{base}-{stamp}.zip", File(fh))
        size_bytes = storage.size(key)
    progress(EXPORT_STEPS, EXPORT_STEPS, "Done")
    return {
        "version": version.number,
        "architecture": config["architecture"],
        "classes": len(class_names),
        "onnx_max_abs_diff": diff,
        "torchscript_max_abs_diff": script_diff,
        "bytes": size_bytes,
        "files": [key],
        "measured": formats,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""ONNX exports of a classifier in three precisions, and how each (and the TorchScript file of
export_torchscript.py) compares with FP32 ONNX on real images.

Every graph has input `input` (N x 3 x S x S, float32, dynamic batch) and two outputs: `logits` (N x C, what
the platform's model returns, mirror-averaged when its checkpoint says so) and `embedding` (N x D, the pooled
backbone features the classifier reads, averaged over the image and its mirror likewise), for drift monitoring.

- FP16: `onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)`: callers still feed and
  read float32.
- INT8: `onnxruntime.quantization.quantize_static` (QOperator, per-channel weights, percentile calibration on
  preprocessed images the caller supplies), after `quant_pre_process`; `quantize_dynamic` when there are no calibration
  images or static quantization fails. The method used is returned so that reports can name it.

Plain numpy / torch / onnxruntime: no Django. Nothing here decides which images are used.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader
from torch import nn
from torch.nn import functional as F

from training.ml.evaluate import evaluate
from training.ml.export_files import DECIDED_MARGIN, MULTI_LABEL_THRESHOLD
from training.ml.export_files import ONNX_FILES as FILES
from training.ml.export_files import ONNX_OUTPUTS as OUTPUTS
from training.ml.export_torchscript import TorchScriptSession

FORMATS = ("fp32", "fp16", "int8", "int8_vnni")
CALIBRATION_BATCH = 8


class LogitsAndEmbedding(nn.Module):
    """(logits, embedding) of a timm classifier; with `mirror`, both are means over the image and its mirror.

    The classifier is linear, so averaging logits equals classifying averaged features: the logits are those of
    `training.ml.models.MirrorAveraged(model)` (or of the model itself without `mirror`)."""

    def __init__(self, model: nn.Module, *, mirror: bool) -> None:
        super().__init__()
        self.model = model
        self.mirror = mirror

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        classifier = self.model.get_classifier()
        features = self._features(x)
        if not self.mirror:
            return classifier(features), features
        # Two forwards rather than one doubled batch: slicing by len(x) would freeze the batch size in ONNX.
        mirrored = self._features(x.flip(-1))
        return (classifier(features) + classifier(mirrored)) / 2, (features + mirrored) / 2


class _StaticSamePad(nn.Module):
    """A TF-"same" convolution with the padding its input size gives, fixed: timm's Conv2dSame computes it from
    the input shape at run time, which leaves shape arithmetic in the graph that the quantizer cannot follow."""

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv = conv
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return F.conv2d(F.pad(x, self.pad), c.weight, c.bias, c.stride, 0, c.dilation, c.groups)


def static_padding(module: nn.Module, image_size: int) -> nn.Module:
    """A copy of `module` whose TF-"same" convolutions pad by constants for `image_size` inputs (same output)."""
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.padding import pad_same_arg

    module = copy.deepcopy(module).eval()
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:
            sizes[name] = tuple(args[0].shape[-2:])

        return hook

    hooks = [m.register_forward_pre_hook(record(n)) for n, m in module.named_modules() if isinstance(m, Conv2dSame)]
    if not hooks:
        return module
    with torch.inference_mode():
        module(torch.zeros(1, 3, image_size, image_size))
    for hook in hooks:
        hook.remove()
    for name, size in sizes.items():
        conv = module.get_submodule(name)
        pad = tuple(pad_same_arg(list(size), conv.weight.shape[-2:], conv.stride, conv.dilation))
        parent_name, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, child, _StaticSamePad(conv, pad))
    return module


def export_fp32(module: nn.Module, path: Path, *, image_size: int, opset: int) -> None:
    """Trace `module` (returning (logits, embedding)) to ONNX with a dynamic batch axis (fixed image size)."""
    module = static_padding(module, image_size)
    example = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            opset_version=opset,
            input_names=["input"],
            output_names=list(OUTPUTS),
            dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
            dynamo=False,
        )


def convert_fp16(source: Path, target: Path) -> None:
    """Weights and activations in float16; inputs and outputs stay float32 (keep_io_types)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


class _Calibration(CalibrationDataReader):
    """onnxruntime CalibrationDataReader over an array of preprocessed images, in small batches of one size: the
    percentile calibrator stacks every batch's activations, and a shorter last batch made it fail (onnxruntime
    1.32: "inhomogeneous shape"), which left 46 calibration images with a dynamic INT8 model that kept 2 of 5
    top-1 predictions."""

    def __init__(self, images: np.ndarray) -> None:
        size = max(b for b in range(1, CALIBRATION_BATCH + 1) if len(images) % b == 0) if len(images) else 1
        self.batches = iter([images[i : i + size] for i in range(0, len(images), size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {"input": np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:  # pragma: no cover - quantize_static reads once
        pass


def classifier_nodes(path: Path) -> list[str]:
    """The classifier (Gemm/MatMul) nodes and every node downstream of them: the logits path, kept in float.
    Quantizing it rounds the logits themselves to 256 steps over their calibrated range: on a digits project with
    a standardized head that flipped 75 % of the top-1 predictions, against 8 % with it kept in float."""
    import onnx

    nodes = list(onnx.load(str(path), load_external_data=False).graph.node)
    keep = [n for n in nodes if n.op_type in ("Gemm", "MatMul")]
    names = {n.name for n in keep}
    produced = {o for n in keep for o in n.output}
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if node.name not in names and any(i in produced for i in node.input):
                names.add(node.name)
                produced.update(node.output)
                changed = True
    return sorted(names)


class _QuietQuantizer(logging.Filter):
    """Drops onnxruntime's quantization notes below WARNING: it logs them on the root logger ("Increased scale[800]
    for weight ...", one per adjusted channel: 150 lines for the demo's model), into a command's output and the
    worker's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet_quantizer():
    root, quiet = logging.getLogger(), _QuietQuantizer()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def quantize_int8(
    source: Path,
    target: Path,
    calibration: np.ndarray | None,
    *,
    qdq: bool = False,
    reduce_range: bool = True,
) -> str:
    """Write an INT8 model; returns the method used ("static QOperator, ..." or "dynamic (...reason)").

    QOperator by default: on this CPU it ran EfficientNet-Lite0 at 128 px at 1.5-2x the speed of QDQ. Percentile
    calibration: on CIFAR-10 (500 test images) it kept FP32's accuracy (73.2 % vs 73.0 %) where MinMax lost up to
    0.6 points and Entropy 0.6, with the smallest largest-probability difference (0.31 vs 0.36).

    7-bit weights (reduce_range, the default): onnxruntime's uint8 x int8 kernels on x86 CPUs with AVX2 but without
    VNNI add pairs of products in 16 bits, which saturate with full-range weights. On such a CPU (bench/compression.py,
    CIFAR-10, 500 test images) full-range INT8 lost 3.6 points against FP32 and 7-bit weights 0.8 (2.35x and 2.07x
    FP32's speed), and a really trained 10-class model kept 2 of 6 top-1 predictions instead of all. On a CPU with
    AVX-512 VNNI (2,000 test images, December 2026) it is the other way round: 7-bit weights lost 2.4 points (top-1
    agreement with FP32 0.86), full-range ones none (+0.95, agreement 0.955), at 2.5x and 2.6x FP32's speed. So an
    export writes both (export_files.ONNX_FILES: int8 and int8_vnni)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="labelloop-quant-") as tmp, _quiet_quantizer():
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception:  # the optimizer or shape inference does not handle the graph: quantize it as it is
            prepared = source
        reason = "no calibration images"
        if calibration is not None and len(calibration):
            reader = _Calibration(calibration)
            try:
                # The percentile calibrator prints its progress to stdout: keep it out of a command's output.
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    quantize_static(
                        str(prepared),
                        str(target),
                        reader,
                        quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
                        per_channel=True,
                        reduce_range=reduce_range,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        nodes_to_exclude=classifier_nodes(prepared),
                    )
                kind = "QDQ" if qdq else "QOperator"
                return (
                    f"static {kind}, per-channel weights, percentile calibration on {len(calibration)} images, "
                    "classifier kept in float"
                )
            except Exception as exc:  # e.g. an operator static quantization does not cover
                reason = f"static failed: {type(exc).__name__}: {exc}"[:200]
        quantize_dynamic(
            str(prepared),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            nodes_to_exclude=classifier_nodes(prepared),
        )
        return f"dynamic ({reason})"


def session(path: Path):
    """An onnxruntime session on the CPU, or for a TorchScript file (.pt) the same interface over torch."""
    if Path(path).suffix == ".pt":
        return TorchScriptSession(path)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess, images: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embedding) for all images, in batches."""
    logits, embeddings = [], []
    for start in range(0, len(images), batch_size):
        out = sess.run(list(OUTPUTS), {"input": np.ascontiguousarray(images[start : start + batch_size])})
        logits.append(out[0])
        embeddings.append(out[1])
    return np.concatenate(logits).astype(np.float32), np.concatenate(embeddings).astype(np.float32)


def probabilities(logits: np.ndarray, *, multi_label: bool) -> np.ndarray:
    logits = logits.astype(np.float64)
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def timing(sess, images: np.ndarray, *, batch_size: int = 32, repeats: int = 3) -> dict[str, float]:
    """ms per image at batch 1 (median over up to 16 images, after a warm-up) and images/s at `batch_size`
    (best of `repeats` passes over the images, at least one full batch)."""
    one = [images[i : i + 1] for i in range(min(16, len(images)))]
    sess.run(["logits"], {"input": one[0]})
    singles = []
    for x in one:
        start = time.perf_counter()
        sess.run(["logits"], {"input": x})
        singles.append(time.perf_counter() - start)
    batch = images[:batch_size]
    if len(batch) < batch_size:
        batch = np.concatenate([batch] * (batch_size // len(batch) + 1))[:batch_size]
    sess.run(["logits"], {"input": batch})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(["logits"], {"input": batch})
        best = min(best, time.perf_counter() - start)
    return {"ms_per_image": 1000 * statistics.median(singles), "img_per_s": batch_size / best}


def label_metrics(probs: np.ndarray, labels: Sequence[Sequence[int]], *, multi_label: bool) -> dict[str, float | None]:
    """accuracy and macro-F1 against true labels (single-label: top-1; multi-label: subset accuracy at
    MULTI_LABEL_THRESHOLD), by `training.ml.evaluate.evaluate`, the function of the model page's figures: its macro
    runs over the classes present in `labels`, so a file whose predictions equal the model's gets the model's
    figures (None where it defines none)."""
    metrics = evaluate(probs, labels, [str(k) for k in range(probs.shape[1])], multi_label=multi_label)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def agreement(probs: np.ndarray, reference: np.ndarray, *, multi_label: bool = False) -> dict[str, float]:
    """top-1 agreement with the reference (FP32) over all images and over the images the reference decides (its
    top two probabilities at least DECIDED_MARGIN apart: a near-tie may flip under any rounding), and the largest
    absolute probability difference. `multi_label`: what agrees is the predicted label set (every class at
    MULTI_LABEL_THRESHOLD), and the reference decides an image where each of its probabilities is at least
    DECIDED_MARGIN from that threshold; the keys stay the same."""
    if multi_label:
        same = ((probs >= MULTI_LABEL_THRESHOLD) == (reference >= MULTI_LABEL_THRESHOLD)).all(1)
        decided = (np.abs(reference - MULTI_LABEL_THRESHOLD) >= DECIDED_MARGIN).all(1)
    else:
        same = probs.argmax(1) == reference.argmax(1)
        ordered = np.sort(reference, axis=1)
        decided = (
            (ordered[:, -1] - ordered[:, -2]) >= DECIDED_MARGIN if reference.shape[1] > 1 else np.ones(len(same), bool)
        )
    return {
        "top1_agreement": float(same.mean()),
        "top1_agreement_decided": float(same[decided].mean()) if decided.any() else 1.0,
        "decided_images": int(decided.sum()),
        "max_prob_diff": float(np.abs(probs - reference).max()),
    }


def write_compressed(folder: Path, calibration: np.ndarray | None, *, qdq: bool = False) -> str:
    """From `folder/model.onnx`, write the FP16 file and both INT8 files (7-bit and 8-bit weights) beside it; returns
    the INT8 method."""
    convert_fp16(folder / FILES["fp32"], folder / FILES["fp16"])
    method = quantize_int8(folder / FILES["fp32"], folder / FILES["int8"], calibration, qdq=qdq)
    quantize_int8(folder / FILES["fp32"], folder / FILES["int8_vnni"], calibration, qdq=qdq, reduce_range=False)
    return method


def compare_formats(
    folder: Path,
    images: np.ndarray,
    labels: Sequence[Sequence[int]] | None,
    *,
    multi_label: bool,
    files: dict[str, str] | None = None,
) -> list[dict]:
    """One row per format (the first, FP32, is the reference; a `.pt` file is TorchScript): accuracy and macro-F1
    (when `labels`: those of the first len(labels) images), top-1 agreement and largest probability difference
    against FP32 (all images), file size, ms per image (batch 1), images/s (batch 32) and speedup vs FP32."""
    rows = []
    reference = None
    for fmt, name in (files or FILES).items():
        sess = session(folder / name)
        logits, embedding = run(sess, images)
        probs = probabilities(logits, multi_label=multi_label)
        reference = probs if reference is None else reference
        row: dict = {"format": fmt, "file": name, "size_bytes": (folder / name).stat().st_size}
        if labels is not None:
            row.update(label_metrics(probs[: len(labels)], labels, multi_label=multi_label))
        row.update(agreement(probs, reference, multi_label=multi_label))
        row.update(timing(sess, images))
        row["embedding_dim"] = int(embedding.shape[1])
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["size_ratio"] = row["size_bytes"] / base["size_bytes"]
        row["speedup_vs_fp32"] = row["img_per_s"] / base["img_per_s"]
    return rows

"""Names shared by the ONNX exports and their readers (no torch: the web process reads them too)."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Two INT8 files: 7-bit weights run right on any x86 CPU; 8-bit weights are more accurate where the CPU multiplies
# 8-bit values without saturating (x86 with VNNI, ARM) and lose accuracy on x86 CPUs without VNNI
# (training.ml.export_onnx.quantize_int8).
ONNX_FILES = {
    "fp32": "model.onnx",
    "fp16": "model.fp16.onnx",
    "int8": "model.int8.onnx",
    "int8_vnni": "model.int8.vnni.onnx",
}
ONNX_OUTPUTS = ("logits", "embedding")  # the first output's name and meaning never change
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-3  # max abs difference of model.onnx from PyTorch at export; more and nothing is exported
DECIDED_MARGIN = 0.05  # top-1 agreement is promised where FP32's top two probabilities are at least this far apart
# A multi-label model predicts the classes at or above this probability: its holdout figures use it
# (training.ml.evaluate), and its export files are held to the same label sets where FP32 is this far from it.
MULTI_LABEL_THRESHOLD = 0.5


def predicted_labels(probabilities: Sequence[float], names: Sequence[T]) -> list[T]:
    """What a multi-label model predicts: the `names` of every class at MULTI_LABEL_THRESHOLD or more, most probable
    first (ties in class order). The prediction service answers it as `labels`, batch inference writes it as
    `predicted_classes`, and the model page's picks compare it with the classes given."""
    given = [j for j, p in enumerate(probabilities) if p >= MULTI_LABEL_THRESHOLD]
    return [names[j] for j in sorted(given, key=lambda j: -probabilities[j])]


def cpu_has_vnni() -> bool | None:
    """Whether this CPU has AVX-512 VNNI or AVX-VNNI (from Linux's /proc/cpuinfo; None where it cannot tell)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return "avx512_vnni" in flags or "avx_vnni" in flags


def int8_files_for_this_cpu() -> list[str]:
    """The export's INT8 files that run right on this CPU, best first: the 8-bit one only on x86 with VNNI or ARM."""
    eight_bit = bool(cpu_has_vnni()) or platform.machine().lower() in ("aarch64", "arm64")
    return ([ONNX_FILES["int8_vnni"]] if eight_bit else []) + [ONNX_FILES["int8"]]

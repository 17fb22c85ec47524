"""Names shared by the ONNX exports and their readers (no torch: the web process reads them too)."""

from __future__ import annotations

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

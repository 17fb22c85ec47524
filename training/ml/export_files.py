"""Names shared by the ONNX exports and their readers (no torch: the web process reads them too)."""

from __future__ import annotations

ONNX_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
ONNX_OUTPUTS = ("logits", "embedding")  # the first output's name and meaning never change
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-3  # max abs difference of model.onnx from PyTorch at export; more and nothing is exported
DECIDED_MARGIN = 0.05  # top-1 agreement is promised where FP32's top two probabilities are at least this far apart

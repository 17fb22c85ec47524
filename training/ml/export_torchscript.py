"""The TorchScript export: `torch.jit.trace` of the same module the ONNX export wraps, loaded with torch alone.

The traced module is `training.ml.export_onnx.LogitsAndEmbedding` (the timm model with mirror averaging inside
when the checkpoint says so): it takes N x 3 x S x S float32 and returns (`logits`, `embedding`) like the ONNX
files. Tracing records the operations of one forward: the image size S is fixed (as in the ONNX files), the batch
size is not (the export checks another batch size than the one it traced with). A consumer needs `torch` only:
`logits, embedding = torch.jit.load("model.torchscript.pt")(batch)` (no timm, no Labelloop code).

`TorchScriptSession` gives the loaded module onnxruntime's `run(output_names, {"input": array})` so that the
format is measured by the same code as the ONNX files (export_onnx.compare_formats).

torch is imported inside the functions: the file name is read by the web process, which never imports torch.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

TORCHSCRIPT_FILE = "model.torchscript.pt"
OUTPUTS = ("logits", "embedding")  # the order of the traced module's outputs, as in the ONNX files
TRACE_BATCH = 2


def export_torchscript(module: Any, path: Path, *, image_size: int) -> None:
    """Trace `module` (returning (logits, embedding)) on a batch of TRACE_BATCH random images and save it."""
    import torch

    module = module.eval()
    example = torch.randn(TRACE_BATCH, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape arithmetic: the image size is fixed by design
        traced = torch.jit.trace(module, (example,), check_trace=False)
    traced.save(str(path))


def load(path: Path):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 marks torch.jit deprecated in favour of export
        return torch.jit.load(str(path), map_location="cpu").eval()


def max_logit_diff(path: Path, reference: Any, check) -> float:
    """The largest absolute difference between the saved module's logits and `reference(check)` (a torch batch),
    after a round trip through the file."""
    import torch

    with torch.inference_mode():
        expected = reference(check).float()
        got = load(path)(check)[0].float()
    if got.shape != expected.shape:
        return float("inf")
    return float((got - expected).abs().max())


class TorchScriptSession:
    """A loaded TorchScript export behind onnxruntime's InferenceSession.run interface (CPU, float32 numpy)."""

    def __init__(self, path: Path) -> None:
        self.module = load(path)

    def run(self, output_names: list[str] | None, feed: dict[str, Any]) -> list:
        import torch

        with torch.inference_mode():
            outputs = self.module(torch.from_numpy(feed["input"]))
        by_name = dict(zip(OUTPUTS, outputs, strict=True))
        return [by_name[name].numpy() for name in (output_names or OUTPUTS)]

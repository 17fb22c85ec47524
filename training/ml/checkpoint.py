"""Checkpoints: one timm model as safetensors + config.json (architecture, classes, preprocessing, metrics).

Head-mode rounds are saved as the full `timm.create_model(arch, num_classes=C)` with the (standardization-
folded) linear head copied into its classifier, so `timm.create_model` + `load_file` reproduces the
platform's probabilities with no Labelloop code: that is what exports ship. A head trained on mirror-averaged
embeddings (`preprocessing.flip_average`) is reproduced by averaging the logits of the image and its mirror
(`serving_model`; the exported ONNX graph includes it)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from training.constants import CONFIG_FILE, WEIGHTS_FILE
from training.ml.heads import LinearHead
from training.ml.models import MirrorAveraged

FORMAT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(out_dir: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write weights then config (each to a temp file, then os.replace). config.json appearing last means a
    reader that sees it sees complete weights. Needs at least config["architecture"] and ["class_names"]."""
    for key in ("architecture", "class_names"):
        if key not in config:
            raise ValueError(f"checkpoint config needs {key!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    _atomic_write(out / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    cfg = {"format_version": FORMAT_VERSION, **config}
    cfg.setdefault("num_classes", len(config["class_names"]))

    def write_json(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(cfg, indent=2, sort_keys=True, default=_json_default))

    _atomic_write(out / CONFIG_FILE, write_json)
    return out


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj)}")


def read_config(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(ckpt_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {ckpt_dir}: not a checkpoint (or an unfinished one)")
    return json.loads(path.read_text())


def load_checkpoint(ckpt_dir: str | os.PathLike, *, drop_rate: float = 0.0) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, config). A plain timm model for linear heads and fine-tuned networks."""
    cfg = read_config(ckpt_dir)
    state = load_file(str(Path(ckpt_dir) / WEIGHTS_FILE))
    head = cfg.get("head") or {}
    if head.get("type", "linear") == "linear":
        model = timm.create_model(cfg["architecture"], num_classes=cfg["num_classes"], drop_rate=drop_rate)
    else:
        raise ValueError(f"unsupported head type {head.get('type')!r} in {ckpt_dir}")
    model.load_state_dict(state, strict=True)
    return model.eval(), cfg


def mirror_averaged(cfg: dict[str, Any]) -> bool:
    """Whether a checkpoint's predictions average the image and its mirror (heads on flip-averaged embeddings)."""
    return bool((cfg.get("preprocessing") or {}).get("flip_average", False))


def serving_model(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    """The module that reproduces the platform's predictions for a checkpoint: the model itself, or the model
    averaged over the image and its mirror when the checkpoint says so."""
    return MirrorAveraged(model).eval() if mirror_averaged(cfg) else model


def head_model_state(backbone: nn.Module, head: LinearHead, architecture: str) -> dict[str, torch.Tensor]:
    """State dict of `timm.create_model(architecture, num_classes=C)` = pretrained backbone + folded head."""
    weight, bias = head.folded()
    model = timm.create_model(architecture, num_classes=weight.shape[0])
    state = model.state_dict()
    own = backbone.state_dict()
    classifier = model.get_classifier()
    for key in state:
        if key in own:
            state[key] = own[key]
    # The classifier is whatever get_classifier() returns; find its parameter names by identity.
    names = {id(p): n for n, p in model.named_parameters()}
    state[names[id(classifier.weight)]] = weight
    state[names[id(classifier.bias)]] = bias
    return state

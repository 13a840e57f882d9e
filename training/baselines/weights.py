"""Reading baseline weights from local files and building open_clip CLIPs from them.

Nothing is ever downloaded: every loader takes a local path. Files are read without running code:
safetensors, or torch files through the MPS loader's bounded, restricted unpickler
(``training.mps.checkpoints.read_torch_file``: tensors and plain containers, nothing called, nothing
allocated beyond the file's size).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from training.mps.checkpoints import read_torch_file
from training.mps.errors import CheckpointError
from training.mps.model import causal_mask, clip_kwargs
from training.mps.torch_compat import import_open_clip

from .base import BaselineError

# File names of open_clip's Hugging Face Hub repositories (weights, and the config beside them).
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
OPEN_CLIP_CONFIG = "open_clip_config.json"
SHOWN = 5

ClipConfig = dict[str, Any]  # an open_clip model JSON: embed_dim, vision_cfg, text_cfg, quick_gelu...


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text[:limit] if text else type(error).__name__


def read_tensors(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a safetensors or torch file.

    A training checkpoint's ``{"state_dict": {...}, "epoch": ..., "optimizer": ...}`` is unwrapped
    (HPS v2, open_clip's own training checkpoints), and DDP's ``module.`` prefix dropped."""
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{what}: no weights file at {path}")
    if path.suffix == ".safetensors":
        try:
            obj: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise BaselineError(f"{what}: {path} is not a readable safetensors file: {_one_line(error)}") from error
    else:
        try:
            obj = read_torch_file(path)
        except CheckpointError as error:
            raise BaselineError(f"{what}: {path} is not a weights file that can be read safely: {error}") from error
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(value, torch.Tensor) for value in obj.values()):
        raise BaselineError(f"{what}: {path} holds {type(obj).__name__}, not a state dict of tensors")
    state = {str(key): value for key, value in obj.items()}
    if all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def weights_file(path: str | os.PathLike, names: tuple[str, ...], what: str) -> Path:
    """``path`` itself when a file; in a directory, the first of ``names`` present."""
    path = Path(path)
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        raise BaselineError(f"{what}: {path} is a directory without {' or '.join(names)}")
    if not path.exists():
        raise BaselineError(f"{what}: nothing at {path}")
    return path


def _config_from_json(path: Path) -> ClipConfig:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BaselineError(f"{path} is not a readable JSON model config: {_one_line(error)}") from error
    if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict):  # open_clip_config.json
        data = data["model_cfg"]
    if not isinstance(data, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(data):
        raise BaselineError(f"{path}: an open_clip model config needs embed_dim, vision_cfg and text_cfg")
    return data


def clip_config(
    architecture: str | ClipConfig | None, weights: str | os.PathLike, default: str = "ViT-H-14"
) -> ClipConfig:
    """The open_clip model config to build, in order: ``architecture`` given as a dict, a JSON file
    or an open_clip model name; ``open_clip_config.json`` beside the weights; ``default``."""
    if isinstance(architecture, dict):
        config = architecture
    elif architecture and (architecture.endswith(".json") or Path(architecture).is_file()):
        config = _config_from_json(Path(architecture))
    else:
        weights = Path(weights)
        sidecar = (weights if weights.is_dir() else weights.parent) / OPEN_CLIP_CONFIG
        if architecture is None and sidecar.is_file():
            config = _config_from_json(sidecar)
        else:
            name = architecture or default
            config = import_open_clip().get_model_config(name)
            if config is None:
                raise BaselineError(f"unknown open_clip architecture {name!r} (give a name open_clip knows or a JSON)")
    if not {"embed_dim", "vision_cfg", "text_cfg"} <= set(config):
        raise BaselineError("an open_clip model config needs embed_dim, vision_cfg and text_cfg")
    return copy.deepcopy(config)


def _size_mismatches(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    expected = model.state_dict()
    return [
        f"{name} {tuple(state[name].shape)} vs {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and state[name].shape != tensor.shape
    ]


def build_clip(config: ClipConfig, state: dict[str, torch.Tensor], what: str) -> torch.nn.Module:
    """An ``open_clip.model.CLIP`` holding ``state`` (floats as fp32), in eval mode on the CPU.

    Built on the meta device (ViT-H would spend seconds initialising weights the file overwrites);
    a tensor missing, extra or of another shape than the config says is refused, naming a few."""
    open_clip = import_open_clip()
    try:
        kwargs = clip_kwargs(config)
        with torch.device("meta"):
            model = open_clip.model.CLIP(**kwargs)
    except (TypeError, ValueError) as error:
        raise BaselineError(f"{what}: cannot build this open_clip config: {_one_line(error)}") from error
    mismatched = _size_mismatches(model, state)
    missing = [name for name in model.state_dict() if name not in state]
    unexpected = [name for name in state if name not in model.state_dict()]
    if mismatched or missing or unexpected:
        problems = []
        if mismatched:
            problems.append(f"{len(mismatched)} of another shape (file vs config), e.g. {mismatched[:SHOWN]}")
        if missing:
            problems.append(f"{len(missing)} missing, e.g. {missing[:SHOWN]}")
        if unexpected:
            problems.append(f"{len(unexpected)} unknown, e.g. {unexpected[:SHOWN]}")
        raise BaselineError(
            f"{what}: the weights do not fit the open_clip architecture "
            f"(embed_dim {config['embed_dim']}): tensors " + "; ".join(problems)
        )
    state = {name: value.float() if value.is_floating_point() else value for name, value in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.attn_mask = causal_mask(int(config["text_cfg"].get("context_length", 77)))  # non-persistent buffer
    still_meta = [name for name, tensor in model.state_dict(keep_vars=True).items() if tensor.is_meta]
    if still_meta:
        raise BaselineError(f"{what}: tensors left uninitialised after loading: {still_meta[:SHOWN]}")
    return model.eval()

"""Load MPS checkpoints in every format we meet, save them in the project's own format.

Accepted by :func:`load_checkpoint`:
- the published whole-module pickle (torch zip), read by pickle_loader's restricted unpickler;
- a plain state dict in the reference layout (``.pth``/``.bin``/``.safetensors``, ``model.`` prefix or not);
- the project's format: ``model.safetensors`` + ``config.json`` in a directory, or ``X.safetensors`` +
  ``X.json`` side by side. The JSON holds the full MPSConfig, so nothing is inferred.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import MPSConfig, check_trained_dimensions
from .convert import (
    TowerHints,
    build_config,
    convert_reference_state,
    hints_from_architecture,
    hints_from_hf_configs,
    is_reference_layout,
    matching_architecture,
    shape_summary,
    strip_prefixes,
)
from .errors import CheckpointError
from .model import MPSModel
from .pickle_loader import PickledModule, StandIn, flatten_pickled_module, unpickle_torch_zip

FORMAT_NAME = "mhp-mps"
# 2: the config records pad_id and trained_dimensions. Version 1 files cannot say how they were padded
# (imports of the published model need 49407, models trained here before version 2 used 0).
FORMAT_VERSION = 2
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def project_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, config) paths of the project's format at ``path`` (a directory or a .safetensors/.json)."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix(".safetensors"), path.with_suffix(".json")
    return path / WEIGHTS_NAME, path / CONFIG_NAME


def _is_project_config(config_path: Path) -> bool:
    try:
        return json.loads(config_path.read_text()).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(temp_path)`` then rename, so a reader never sees half a file."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(temp_name))
        os.chmod(temp_name, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(temp_name, target)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def save_checkpoint(model: MPSModel, path: str | os.PathLike) -> Path:
    """Save in the project's format; ``path`` is a directory, or a ``.safetensors`` file (config beside it).

    Weights are written before the config, each atomically, so a present config means complete weights.
    Returns the config file's path.
    """
    weights_path, config_path = project_files(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    metadata = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
    _atomic_write(weights_path, lambda temp: save_file(tensors, str(temp), metadata=metadata))
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "weights": weights_path.name,
        "config": model.config.to_dict(),
    }
    _atomic_write(config_path, lambda temp: temp.write_text(json.dumps(document, indent=2) + "\n"))
    return config_path


def _load_project(weights_path: Path, config_path: Path) -> tuple[MPSConfig, dict[str, torch.Tensor]]:
    try:
        document = json.loads(config_path.read_text())
        version = document.get("format_version")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{config_path} is not a valid MPS config: {exc}") from exc
    if version == 1:
        raise CheckpointError(
            f"{config_path} is format version 1, which does not record the pad id and trained dimensions: "
            "re-import the original file with import_mps_checkpoint, or add pad_id (49407 for the published "
            "model, 0 for a model trained here before version 2) and trained_dimensions to its config "
            f"and set format_version to {FORMAT_VERSION}"
        )
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{config_path}: unsupported format version {version!r}")
    try:
        missing = {"pad_id", "trained_dimensions"} - set(document["config"])
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))}")
        config = MPSConfig.from_dict(document["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path} is not a valid MPS config: {exc}") from exc
    return config, _load_safetensors(weights_path)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated?): {exc}") from exc


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """The exception's message on one line (torch's load errors span several), shortened."""
    text = " ".join(str(exc).split())
    return text[:limit] if text else type(exc).__name__


def read_torch_file(path: Path) -> Any:
    """What a ``torch.save`` file holds, read through the bounded, restricted unpickler.

    Only torch's zip format (torch >= 1.6) is read: the older format's loader allocates every storage at
    the size its pickle claims before reading it, so a file of a few hundred bytes could ask for gigabytes.
    Anything else, random bytes or a text file included, is one CheckpointError."""
    if zipfile.is_zipfile(path):
        return unpickle_torch_zip(path)
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"PK\x03\x04":
        raise CheckpointError(f"{path} is a truncated or corrupted zip checkpoint (no central directory)")
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint we can read safely: only the zip format of torch.save "
        "(torch 1.6 and later) is read; re-save an older file with a current torch.save"
    )


def _tensor_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict out of what the file held (``state_dict``/``model`` wrappers unwrapped)."""
    if isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ("state_dict", "model"):
        obj = next(iter(obj.values()))
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kind = type(obj).__name__
        raise CheckpointError(f"{path} holds {kind}, not an MPS model or a state dict of tensors")
    return {str(key): value for key, value in obj.items()}


def _model_from_reference(
    state: dict[str, torch.Tensor], hints: TowerHints, architecture: str | None, path: Path
) -> tuple[MPSConfig, dict[str, torch.Tensor]]:
    state = strip_prefixes(state)
    if not is_reference_layout(state):
        raise CheckpointError(
            f"{path}: unrecognised tensor layout (expected transformers' CLIP keys plus cross_model.*, "
            f"found e.g. {sorted(state)[:3]}); MPSModel weights are saved with save_checkpoint"
        )
    shapes = shape_summary(state)
    architecture = architecture or matching_architecture(shapes)
    if architecture is not None:
        hints = hints.merged_with(hints_from_architecture(architecture))
    return build_config(shapes, hints, architecture), convert_reference_state(state)


def _build_model(config: MPSConfig, state: dict[str, torch.Tensor], path: Path) -> MPSModel:
    try:
        return MPSModel.from_state_dict(config, state)
    except (ValueError, RuntimeError) as exc:  # RuntimeError: load_state_dict's size mismatches
        raise CheckpointError(f"{path} does not match its configuration: {_one_line(exc)}") from exc


def read_checkpoint_state(
    path: str | os.PathLike,
    *,
    architecture: str | None = None,
    text_heads: int | None = None,
    vision_heads: int | None = None,
    activation: str | None = None,
    layer_norm_eps: float | None = None,
    trained_dimensions: Sequence[str] | None = None,
) -> tuple[MPSConfig, dict[str, torch.Tensor]]:
    """(config, MPSModel state dict) from any accepted format, without building the model.

    ``trained_dimensions`` overrides what a file in the authors' layout is taken to be trained on (the
    release: overall only), e.g. for a model trained on the four dimensions with the authors' code."""
    config, state = _read_any_format(
        Path(path), TowerHints(text_heads, vision_heads, activation, layer_norm_eps), architecture
    )
    if trained_dimensions is not None:
        try:
            config.trained_dimensions = check_trained_dimensions(trained_dimensions)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
    return config, state


def _read_any_format(
    path: Path, hints: TowerHints, architecture: str | None
) -> tuple[MPSConfig, dict[str, torch.Tensor]]:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    weights_path, config_path = project_files(path)
    if (path.is_dir() or path.suffix in (".safetensors", ".json")) and _is_project_config(config_path):
        return _load_project(weights_path, config_path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory without an MPS {CONFIG_NAME}")
    if path.suffix == ".safetensors":
        return _model_from_reference(_load_safetensors(path), hints, architecture, path)
    obj = read_torch_file(path)
    if isinstance(obj, StandIn):
        pickled = flatten_pickled_module(obj)
        if not pickled.tensors:
            root = pickled.root_class
            raise CheckpointError(f"{path} holds a pickled {root} without tensors, not an MPS model")
        hints = hints.merged_with(hints_from_hf_configs(pickled.configs))
        return _model_from_reference(pickled.tensors, hints, architecture, path)
    return _model_from_reference(_tensor_dict(obj, path), hints, architecture, path)


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    architecture: str | None = None,
    text_heads: int | None = None,
    vision_heads: int | None = None,
    activation: str | None = None,
    layer_norm_eps: float | None = None,
    trained_dimensions: Sequence[str] | None = None,
) -> MPSModel:
    """An MPSModel in eval mode on ``map_location`` from any accepted format (see module docstring).

    The keyword arguments only matter for bare state dicts, whose towers' head counts, activation
    and eps cannot be read from shapes; ``architecture`` names a built-in or open_clip model config.
    Raises :class:`CheckpointError` for anything else.
    """
    config, state = read_checkpoint_state(
        path,
        architecture=architecture,
        text_heads=text_heads,
        vision_heads=vision_heads,
        activation=activation,
        layer_norm_eps=layer_norm_eps,
        trained_dimensions=trained_dimensions,
    )
    model = _build_model(config, state, Path(path))
    return model.to(map_location).eval()


def read_pickled_module(path: str | os.PathLike) -> PickledModule:
    """Tensors and config attributes of a whole-module pickle (the published format), safely."""
    obj = unpickle_torch_zip(Path(path))
    if not isinstance(obj, StandIn):
        raise CheckpointError(f"{path} holds {type(obj).__name__}, not a pickled module")
    return flatten_pickled_module(obj)


def convert_checkpoint(src: str | os.PathLike, dest: str | os.PathLike, **load_options: Any) -> Path:
    """Read ``src`` in any accepted format and write it to ``dest`` in the project's format.

    Returns the written config's path; ``load_options`` are :func:`load_checkpoint`'s keywords.
    """
    config, state = read_checkpoint_state(src, **load_options)
    model = _build_model(config, state, Path(src))
    return save_checkpoint(model, dest)

"""A fresh MPSModel whose CLIP backbone comes from open_clip weights already on this machine.

Never downloads: the weights are a local file or an entry of the Hugging Face cache that open_clip
uses; anything else is refused with what to do. The cross model starts from random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import MPSConfig
from .errors import CheckpointError
from .model import MPSModel
from .torch_compat import import_open_clip

_HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def resolve_pretrained(
    architecture: str, pretrained: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Local path of ``pretrained``: an existing file, or open_clip's tag found in the local cache."""
    if Path(pretrained).is_file():
        return Path(pretrained)
    open_clip = import_open_clip()
    source = open_clip.get_pretrained_cfg(architecture, str(pretrained))
    hub = source.get("hf_hub", "") if source else ""
    if not hub:
        raise CheckpointError(f"{pretrained!r} is neither a file nor an open_clip tag of {architecture}")
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    for name in [filename] if filename else list(_HF_FILENAMES):
        cached = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir and str(cache_dir))
        if isinstance(cached, str):
            return Path(cached)
    raise CheckpointError(
        f"{architecture} weights {pretrained!r} are not in the local cache ({repo_id}); this code never "
        "downloads. Fetch them on a machine with network access, or pass the file's path as pretrained="
    )


def build_model(
    config: MPSConfig | None = None,
    *,
    pretrained: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> MPSModel:
    """MPSModel for ``config`` (ViT-H-14 by default); backbone weights from ``pretrained`` when given."""
    config = config or MPSConfig()
    model = MPSModel(config)
    if pretrained is not None:
        if config.architecture is None and not Path(pretrained).is_file():
            raise CheckpointError("a pretrained tag needs config.architecture; pass a file path otherwise")
        path = resolve_pretrained(config.architecture or "", pretrained, cache_dir)
        import_open_clip().load_checkpoint(model.backbone, str(path), strict=True, weights_only=True)
    return model

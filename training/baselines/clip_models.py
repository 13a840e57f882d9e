"""CLIP-based baselines on open_clip: CLIP score, HPS v2 and PickScore.

All three score ``scale * cos(image embedding, prompt embedding)``; they differ in weights and scale:

- ``ClipScore``: any open_clip CLIP (ViT-H-14 by default); ``100 * cos``, the CLIPScore convention
  (torchmetrics, Hessel et al. up to their 2.5 weight) without its clamp at 0, so that two images
  below zero similarity are still ordered. 100 is also ViT-H-14's trained ``logit_scale.exp()``.
- ``HPSv2``: open_clip ViT-H-14 fine-tuned by HPS v2; ``cos`` itself, as HPS v2's scorer does
  (``logits_per_image = image_features @ text_features.T`` of normalised features, score = diagonal).
- ``PickScore``: a transformers-format CLIP-H checkpoint converted to open_clip with MPS's key mapping
  (``training.mps.convert``); ``logit_scale.exp() * cos``, as PickScore's reference code.

Images go through each model's own preprocessing (``preprocessing``: CLIP score open_clip's evaluation
transform, HPS v2 longest side and padding, PickScore transformers' CLIPProcessor); prompts through the
CLIP BPE tokenizer, padded as each was trained (0 for the open_clip-native two, 49407 for PickScore; the
pooled text feature sits at the end token before any padding, so this matters to MPS, not to these scores).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from training.mps.config import HF_PAD_ID, OPEN_CLIP_PAD_ID
from training.mps.convert import (
    TowerHints,
    build_config,
    convert_reference_state,
    hints_from_hf_configs,
    matching_architecture,
)
from training.mps.errors import CheckpointError
from training.mps.preprocess import image_transform, preprocess_images
from training.mps.tokenizer import tokenize

from .base import BaselineError, ImageInput
from .preprocessing import Transform, clip_processor_transform, hps_v2_transform
from .weights import OPEN_CLIP_WEIGHTS, ClipConfig, build_clip, clip_config, read_tensors, weights_file


def default_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


class ClipEmbedder:
    """An open_clip CLIP on a device: normalised image and text embeddings, images in batches."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: ClipConfig,
        *,
        pad_id: int,
        preprocessing: Callable[[int], Transform] = image_transform,
        device=None,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.batch_size = batch_size
        size = config["vision_cfg"].get("image_size", 224)
        self.image_size = int(size[0] if isinstance(size, list | tuple) else size)
        self.context_length = int(config["text_cfg"].get("context_length", 77))
        self.pad_id = pad_id
        self.transform = preprocessing(self.image_size)  # the model's own way of making an image square

    @torch.no_grad()
    def image_embeddings(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """[N, D] L2-normalised image embeddings (fp32, on the CPU)."""
        batches = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            pixels = preprocess_images(batch, self.image_size, self.transform).to(self.device)
            batches.append(self.model.encode_image(pixels, normalize=True).float().cpu())
        return torch.cat(batches) if batches else torch.empty(0, int(self.config["embed_dim"]))

    @torch.no_grad()
    def text_embedding(self, prompt: str) -> torch.Tensor:
        """[D] L2-normalised embedding of the prompt (fp32, on the CPU)."""
        ids = tokenize([prompt], self.context_length, pad_id=self.pad_id).to(self.device)
        return self.model.encode_text(ids, normalize=True).float().cpu()[0]


class _CosineScorer:
    """``scale * cos(image, prompt)``; subclasses set the name, the weights and the scale."""

    name = "clip"

    def __init__(self, embedder: ClipEmbedder, scale: float) -> None:
        self.embedder = embedder
        self.scale = scale

    def score(self, prompt: str, images: Sequence[ImageInput]) -> list[float]:
        if not images:
            return []
        cosine = self.embedder.image_embeddings(list(images)) @ self.embedder.text_embedding(prompt)
        return (self.scale * cosine).tolist()


def _open_clip_embedder(
    path: str | os.PathLike, architecture: str | ClipConfig | None, what: str, options: dict[str, Any]
) -> ClipEmbedder:
    """An open_clip-native model (CLIP score, HPS v2): prompts padded with 0, as open_clip's tokenizer."""
    weights = weights_file(path, OPEN_CLIP_WEIGHTS, what)
    config = clip_config(architecture, path)
    model = build_clip(config, read_tensors(weights, what), what)
    return ClipEmbedder(model, config, pad_id=OPEN_CLIP_PAD_ID, **options)


class ClipScore(_CosineScorer):
    """CLIP score, ``100 * cos``, with an open_clip CLIP (default ViT-H-14) from local weights.

    ``path``: an open_clip state dict file (``.safetensors``, ``.bin``, ``.pt``) or an open_clip Hub
    directory (``open_clip_model.safetensors`` + ``open_clip_config.json``). ``architecture``: an
    open_clip model name, a model JSON path or a config dict; default the directory's
    ``open_clip_config.json``, else ViT-H-14."""

    name = "clip"
    SCALE = 100.0

    def __init__(self, embedder: ClipEmbedder) -> None:
        super().__init__(embedder, self.SCALE)

    @classmethod
    def from_path(cls, path, architecture=None, **options: Any) -> ClipScore:
        return cls(_open_clip_embedder(path, architecture, "CLIP score", options))


class HPSv2(_CosineScorer):
    """HPS v2: open_clip ViT-H-14 with HPS v2's weights; score = cos of the normalised embeddings.

    ``path``: HPS v2's checkpoint (``HPS_v2_compressed.pt`` / ``HPS_v2.1_compressed.pt``: an open_clip
    state dict, possibly under ``state_dict`` and prefixed ``module.``)."""

    name = "hpsv2"

    def __init__(self, embedder: ClipEmbedder) -> None:
        super().__init__(embedder, 1.0)

    @classmethod
    def from_path(cls, path, architecture=None, **options: Any) -> HPSv2:
        return cls(_open_clip_embedder(path, architecture, "HPS v2", {**options, "preprocessing": hps_v2_transform}))


# transformers' CLIP checkpoints, a file or a model directory (with config.json beside the weights).
TRANSFORMERS_FILES = ("model.safetensors", "pytorch_model.bin")
_TRANSFORMERS_KEY = re.compile(r"^(text_model|vision_model)\.|^(text_projection|visual_projection)\.weight$")
_IGNORED_EXTRA = ("logit_bias",)


def _transformers_clip_shapes(state: dict[str, torch.Tensor], what: str) -> dict[str, int]:
    """Widths, depths and sizes of a transformers CLIP from its tensors (the cross model's are zero)."""

    def shape(key: str) -> torch.Size:
        if key not in state:
            raise BaselineError(f"{what}: no {key!r}: not a complete transformers CLIP checkpoint")
        return state[key].shape

    def layers(prefix: str) -> int:
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        return 1 + max((int(m.group(1)) for key in state if (m := pattern.match(key))), default=-1)

    token = shape("text_model.embeddings.token_embedding.weight")  # [vocab, text width]
    patch = shape("vision_model.embeddings.patch_embedding.weight")  # [width, 3, p, p]
    positions = shape("vision_model.embeddings.position_embedding.weight")[0]  # 1 + grid**2
    grid = round((positions - 1) ** 0.5)
    if grid * grid != positions - 1:
        raise BaselineError(f"{what}: vision position embedding has {positions} rows, not 1 + a square")
    return {
        "embed_dim": shape("text_projection.weight")[0],
        "vocab_size": token[0],
        "text_width": token[1],
        "context_length": shape("text_model.embeddings.position_embedding.weight")[0],
        "text_layers": layers("text_model.encoder.layers."),
        "text_mlp": shape("text_model.encoder.layers.0.mlp.fc1.weight")[0],
        "vision_width": patch[0],
        "patch_size": patch[2],
        "image_size": patch[2] * grid,
        "vision_layers": layers("vision_model.encoder.layers."),
        "vision_mlp": shape("vision_model.encoder.layers.0.mlp.fc1.weight")[0],
        # no cross model in a plain CLIP: build_config's MPS fields are unused here
        "cross_layers": 0,
        "cross_heads": 1,
        "cross_dim_head": 1,
        "cross_ff_mult": 1,
    }


def _hints_from_clip_config(config: ClipConfig) -> TowerHints:
    vision, text = config["vision_cfg"], config["text_cfg"]
    return TowerHints(
        text_heads=text.get("heads", 8),
        vision_heads=vision["width"] // vision.get("head_width", 64),
        activation="quick_gelu" if config.get("quick_gelu") else "gelu",
        layer_norm_eps=1e-5,
    )


def _transformers_hints(path: Path, architecture: str | ClipConfig | None, shapes: dict[str, int]) -> TowerHints:
    """Head counts and activation: transformers' ``config.json`` beside the weights, else ``architecture``
    (a name, JSON or dict), else the built-in architecture these shapes match (ViT-H-14)."""
    hints = TowerHints()
    config_json = (path if path.is_dir() else path.parent) / "config.json"
    if config_json.is_file():
        try:
            hints = hints_from_hf_configs({"config.json": json.loads(config_json.read_text())})
        except (OSError, ValueError, CheckpointError) as error:
            raise BaselineError(
                f"PickScore: {config_json} is not a readable transformers CLIP config: {error}"
            ) from error
    if architecture is None and hints.text_heads is None:
        architecture = matching_architecture(shapes)
    if architecture is not None:
        hints = hints.merged_with(_hints_from_clip_config(clip_config(architecture, path)))
    return hints


def transformers_clip_to_open_clip(
    state: dict[str, torch.Tensor], hints: TowerHints, shapes: dict[str, int], what: str
) -> tuple[ClipConfig, dict[str, torch.Tensor]]:
    """(open_clip config, open_clip state dict) of a transformers CLIP, through MPS's key mapping:
    q/k/v into ``in_proj``, projections transposed, layers renamed (``training.mps.convert``)."""
    state = {key: value for key, value in state.items() if key not in _IGNORED_EXTRA}
    try:
        config = build_config(shapes, hints, None).clip
        converted = convert_reference_state(state)
    except CheckpointError as error:
        raise BaselineError(f"{what}: {error}") from error
    return config, {key.removeprefix("backbone."): value for key, value in converted.items()}


class PickScore(_CosineScorer):
    """PickScore: a transformers-format CLIP-H (``text_model.*``, ``vision_model.*``,
    ``visual_projection.weight``, ``text_projection.weight``, ``logit_scale``) converted to open_clip;
    score = ``logit_scale.exp() * cos``.

    ``path``: the model directory (``model.safetensors`` or ``pytorch_model.bin`` with ``config.json``,
    which gives the head counts and activation) or a weights file; without a ``config.json`` the head
    counts come from ``architecture`` or the matching built-in architecture (ViT-H-14)."""

    name = "pickscore"

    @classmethod
    def from_path(cls, path, architecture=None, **options: Any) -> PickScore:
        what = "PickScore"
        path = Path(path)
        state = read_tensors(weights_file(path, TRANSFORMERS_FILES, what), what)
        if not any(_TRANSFORMERS_KEY.match(key) for key in state):
            raise BaselineError(
                f"{what}: {path} is not a transformers CLIP checkpoint (no text_model.*/vision_model.* tensors; "
                f"found e.g. {sorted(state)[:3]})"
            )
        shapes = _transformers_clip_shapes(state, what)
        hints = _transformers_hints(path, architecture, shapes)
        config, converted = transformers_clip_to_open_clip(state, hints, shapes, what)
        model = build_clip(config, converted, what)
        scale = float(model.logit_scale.detach().float().exp())
        embedder = ClipEmbedder(model, config, pad_id=HF_PAD_ID, preprocessing=clip_processor_transform, **options)
        return cls(embedder, scale)

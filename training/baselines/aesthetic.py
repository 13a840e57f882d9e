"""The LAION improved aesthetic predictor: an MLP on normalised CLIP ViT-L/14 image embeddings.

Published as ``sac+logos+ava1-l14-linearMSE.pth`` (github.com/christophschuhmann/improved-aesthetic-predictor):
a state dict of ``Linear(768, 1024) - Dropout - Linear(1024, 128) - Dropout - Linear(128, 64) - Dropout -
Linear(64, 16) - Linear(16, 1)`` under ``layers.{0,2,4,6,7}.{weight,bias}``, applied to OpenAI CLIP
ViT-L/14's image embedding divided by its L2 norm. The prompt is not used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from training.mps.config import OPEN_CLIP_PAD_ID

from .base import BaselineError, ImageInput
from .clip_models import ClipEmbedder
from .weights import OPEN_CLIP_WEIGHTS, ClipConfig, build_clip, clip_config, read_tensors, weights_file

LINEAR_LAYERS = (0, 2, 4, 6, 7)  # indices of the Linear layers in the published nn.Sequential
# OpenAI's ViT-L/14 (QuickGELU), the CLIP the predictor was trained on.
DEFAULT_ARCHITECTURE = "ViT-L-14-quickgelu"


class AestheticMLP(nn.Module):
    """The predictor's head, ``layers`` laid out as published (dropouts at 1, 3, 5; eval mode: identity)."""

    def __init__(self, sizes: Sequence[int] = (768, 1024, 128, 64, 16, 1)) -> None:
        super().__init__()
        a, b, c, d, e, f = sizes
        self.layers = nn.Sequential(
            nn.Linear(a, b), nn.Dropout(0.2), nn.Linear(b, c), nn.Dropout(0.2), nn.Linear(c, d), nn.Dropout(0.1),
            nn.Linear(d, e), nn.Linear(e, f),
        )  # fmt: skip

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], what: str = "aesthetic predictor") -> AestheticMLP:
        expected = {f"layers.{index}.{kind}" for index in LINEAR_LAYERS for kind in ("weight", "bias")}
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise BaselineError(
                f"{what}: not the LAION aesthetic MLP (expected layers.{{0,2,4,6,7}}.weight/bias): "
                f"missing {missing[:5]}, unknown {extra[:5]}"
            )
        weights = [state[f"layers.{index}.weight"] for index in LINEAR_LAYERS]
        sizes = [weights[0].shape[1], *(weight.shape[0] for weight in weights)]
        for index, (weight, inputs) in enumerate(zip(weights, sizes, strict=False)):
            if weight.dim() != 2 or weight.shape[1] != inputs:
                raise BaselineError(f"{what}: layers.{LINEAR_LAYERS[index]}.weight is {tuple(weight.shape)}, "
                                    f"expected (_, {inputs}) after the previous layer")  # fmt: skip
        if sizes[-1] != 1:
            raise BaselineError(f"{what}: the last layer gives {sizes[-1]} outputs, not one score")
        mlp = cls(sizes)
        mlp.load_state_dict({name: value.float() for name, value in state.items()})
        return mlp.eval()

    @property
    def input_size(self) -> int:
        return self.layers[0].in_features


class LaionAesthetic:
    """Prompt-independent aesthetic score: MLP(normalised CLIP image embedding)."""

    name = "aesthetic"

    def __init__(self, embedder: ClipEmbedder, mlp: AestheticMLP) -> None:
        embed_dim = int(embedder.config["embed_dim"])
        if mlp.input_size != embed_dim:
            raise BaselineError(
                f"aesthetic predictor: the MLP takes {mlp.input_size}-d embeddings, the CLIP gives {embed_dim}-d "
                "(the published MLP goes with ViT-L/14)"
            )
        self.embedder = embedder
        self.mlp = mlp.to(embedder.device)

    @classmethod
    def from_path(
        cls,
        mlp_path: str | os.PathLike,
        clip_path: str | os.PathLike,
        architecture: str | ClipConfig | None = None,
        **options: Any,
    ) -> LaionAesthetic:
        """``mlp_path``: the predictor's state dict; ``clip_path``: the CLIP's open_clip weights (a file or
        an open_clip Hub directory); ``architecture`` default: the directory's config, else ViT-L-14 QuickGELU."""
        what = "aesthetic predictor"
        mlp = AestheticMLP.from_state_dict(read_tensors(mlp_path, what), what)
        what_clip = "aesthetic predictor's CLIP"
        config = clip_config(architecture, clip_path, default=DEFAULT_ARCHITECTURE)
        model = build_clip(
            config, read_tensors(weights_file(clip_path, OPEN_CLIP_WEIGHTS, what_clip), what_clip), what_clip
        )
        return cls(ClipEmbedder(model, config, pad_id=OPEN_CLIP_PAD_ID, **options), mlp)  # text unused

    @torch.no_grad()
    def score(self, prompt: str, images: Sequence[ImageInput]) -> list[float]:
        if not images:
            return []
        embeddings = self.embedder.image_embeddings(list(images)).to(self.embedder.device)
        return self.mlp(embeddings)[:, 0].float().cpu().tolist()

"""MPSModel: an open_clip CLIP backbone, the condition mask and the cross model, producing scores.

Differences from the reference implementation, each a fix (tested in test_mps_model.py):
- the condition mask is normalised per sample; the reference divides by the maximum over the whole
  batch, so an image's score depended on the other prompts in its batch
  (``mask_normalization="batch"`` reproduces it for parity checks);
- the best-matching prompt token is always kept, so a mask can never drop every token (the reference
  then softmaxes a row of -inf and returns NaN);
- the threshold is a parameter: 0.3 for scoring (the published evaluation), 0.01 in training.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .config import SCORING_THRESHOLD, MPSConfig
from .cross import CrossModel
from .torch_compat import import_open_clip

MaskNormalization = Literal["sample", "batch"]


def condition_keep_mask(
    prompt_tokens: torch.Tensor,
    condition_tokens: torch.Tensor,
    threshold: float,
    normalization: MaskNormalization = "sample",
) -> torch.Tensor:
    """Which prompt positions to keep for a condition: [B, L, D] x [B, Lc, D] -> bool [B, L].

    ``s[b, i] = max_j <T[b, i], C[b, j]>``, divided by its maximum, kept where above ``threshold``.
    Computed in fp32 so that autocast cannot flip a token across the threshold.
    """
    sim = torch.einsum("bid,bjd->bij", prompt_tokens.float(), condition_tokens.float()).amax(dim=-1)
    if normalization == "sample":
        peak = sim.amax(dim=-1, keepdim=True)  # [B, 1]
    elif normalization == "batch":
        peak = sim.amax().reshape(1, 1)  # reference behaviour: one maximum for the whole batch
    else:
        raise ValueError(f"mask normalization must be 'sample' or 'batch', not {normalization!r}")
    peak = torch.where(peak == 0, torch.ones_like(peak), peak)
    keep = sim / peak > threshold
    # Never drop every token: a fully masked row makes the attention softmax NaN.
    return keep | (sim == sim.amax(dim=-1, keepdim=True))


def causal_mask(length: int) -> torch.Tensor:
    """open_clip's additive causal mask [L, L]: 0 on and below the diagonal, -inf above."""
    return torch.full((length, length), float("-inf")).triu_(1)


def clip_kwargs(clip: dict) -> dict:
    """``open_clip.model.CLIP`` arguments from an open_clip model JSON (which may carry ``custom_text``)."""
    kwargs = dict(clip)
    if kwargs.pop("custom_text", False):
        raise ValueError("MPS needs open_clip's built-in text tower; custom_text (HF towers) is unsupported")
    return kwargs


def _check_backbone(backbone: nn.Module) -> None:
    open_clip = import_open_clip()
    if not isinstance(getattr(backbone, "visual", None), open_clip.transformer.VisionTransformer):
        raise ValueError("MPS needs an open_clip ViT image tower (its token outputs feed the cross model)")
    if not hasattr(backbone, "token_embedding"):
        raise ValueError("MPS needs open_clip's built-in text transformer (its tokens feed the cross model)")
    if backbone.visual.attn_pool is not None or backbone.visual.proj is None:
        raise ValueError("MPS needs a ViT image tower with a linear projection and no attentional pooler")


class MPSModel(nn.Module):
    """MPS reward model. ``backbone`` is an ``open_clip.model.CLIP``; ``cross`` the cross model."""

    def __init__(self, config: MPSConfig) -> None:
        super().__init__()
        open_clip = import_open_clip()
        self.config = config
        self.backbone = open_clip.model.CLIP(**clip_kwargs(config.clip))
        _check_backbone(self.backbone)
        self.cross = CrossModel(
            dim=config.embed_dim,
            layers=config.cross_layers,
            heads=config.cross_heads,
            dim_head=config.cross_dim_head,
            ff_mult=config.cross_ff_mult,
        )

    @classmethod
    def from_state_dict(cls, config: MPSConfig, state: dict[str, torch.Tensor]) -> MPSModel:
        """A model holding ``state``'s tensors (floating ones as fp32), skipping random initialisation.

        Built on the meta device: ViT-H would otherwise spend ~15 s on CPU initialising weights that
        the checkpoint overwrites. Raises ValueError when ``state`` does not match ``config``.
        """
        with torch.device("meta"):
            model = cls(config)
        state = {name: value.float() if value.is_floating_point() else value for name, value in state.items()}
        result = model.load_state_dict(state, strict=False, assign=True)
        if result.missing_keys or result.unexpected_keys:
            missing, unexpected = result.missing_keys[:5], result.unexpected_keys[:5]
            raise ValueError(f"tensors do not match the configuration: missing {missing}, extra {unexpected}")
        model.backbone.attn_mask = causal_mask(config.context_length)  # the one non-persistent buffer
        still_meta = [name for name, tensor in model.state_dict(keep_vars=True).items() if tensor.is_meta]
        if still_meta or model.backbone.attn_mask.is_meta:
            raise ValueError(f"tensors left uninitialised after loading: {still_meta[:5]}")
        return model

    def encode_text_tokens(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """token_ids [B, L] -> (projected features at every position [B, L, D], at the end token [B, D])."""
        clip = self.backbone
        cast_dtype = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(token_ids).to(cast_dtype) + clip.positional_embedding.to(cast_dtype)
        # causal mask only: padding positions are computed (and later masked or kept) like the reference
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        projection = clip.text_projection
        tokens = projection(x) if isinstance(projection, nn.Linear) else x @ projection
        end_positions = token_ids.argmax(dim=-1)  # the end token holds the largest id
        pooled = tokens[torch.arange(tokens.shape[0], device=tokens.device), end_positions]
        return tokens, pooled

    def encode_image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [B, 3, H, W] -> projected token features [B, 1 + grid**2, D], no post-layernorm."""
        visual = self.backbone.visual
        x = visual.conv1(pixel_values.to(visual.conv1.weight.dtype))  # [B, width, grid, grid]
        x = x.flatten(2).transpose(1, 2)  # [B, grid**2, width]
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        x = visual.ln_pre(visual.patch_dropout(x))
        return visual.transformer(x) @ visual.proj

    def condition_keep_mask(
        self,
        prompt_tokens: torch.Tensor,
        condition_tokens: torch.Tensor,
        threshold: float = SCORING_THRESHOLD,
        normalization: MaskNormalization = "sample",
    ) -> torch.Tensor:
        return condition_keep_mask(prompt_tokens, condition_tokens, threshold, normalization)

    def score_features(
        self,
        image_tokens: torch.Tensor,
        prompt_tokens: torch.Tensor,
        prompt_pooled: torch.Tensor,
        keep: torch.Tensor,
    ) -> torch.Tensor:
        """Scores [B] from image tokens [B, N, D], prompt tokens [B, L, D], pooled prompt [B, D] and keep
        mask [B, L]."""
        query = self.cross(image_tokens, prompt_tokens.to(image_tokens.dtype), keep)[:, 0, :]  # class token
        cosine = F.cosine_similarity(prompt_pooled.float(), query.float(), dim=-1)
        return self.backbone.logit_scale.float().exp().reshape(()) * cosine

    def encode_texts_once(self, *token_batches: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run the text tower once per distinct row across the batches; return each batch's features."""
        stacked = torch.cat(token_batches, dim=0)
        unique_ids, inverse = torch.unique(stacked, dim=0, return_inverse=True)
        tokens, pooled = self.encode_text_tokens(unique_ids)
        tokens, pooled = tokens[inverse], pooled[inverse]
        sizes = [batch.shape[0] for batch in token_batches]
        return list(zip(tokens.split(sizes), pooled.split(sizes), strict=True))

    def score_tokens(
        self,
        prompt_ids: torch.Tensor,
        condition_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        threshold: float = SCORING_THRESHOLD,
        mask_normalization: MaskNormalization = "sample",
    ) -> torch.Tensor:
        """One score per image [B]: row i of ``prompt_ids`` [B, L] and ``condition_ids`` [B, L] goes with
        image i of ``pixel_values`` [B, 3, H, W]. ``mask_normalization="batch"`` reproduces the reference
        training forward (batch-wide maximum); keep the default for scoring."""
        if not prompt_ids.shape[0] == condition_ids.shape[0] == pixel_values.shape[0]:
            raise ValueError("prompt_ids, condition_ids and pixel_values need the same batch size")
        prompt, condition = self.encode_texts_once(prompt_ids, condition_ids)
        (prompt_tokens, prompt_pooled), (condition_tokens, _) = prompt, condition
        keep = condition_keep_mask(prompt_tokens, condition_tokens, threshold, mask_normalization)
        image_tokens = self.encode_image_tokens(pixel_values)
        return self.score_features(image_tokens, prompt_tokens, prompt_pooled, keep)

    def forward(
        self,
        prompt_ids: torch.Tensor,
        condition_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        threshold: float = SCORING_THRESHOLD,
    ) -> torch.Tensor:
        return self.score_tokens(prompt_ids, condition_ids, pixel_values, threshold)

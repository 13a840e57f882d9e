"""Analytic FLOPs of one MPS training step (PairScorer + preference loss), for model FLOPs utilisation.

Convention (PaLM's MFU): a matmul of a [n, k] input by a [k, m] weight costs 2·n·k·m; attention adds
2·2·n²·d per layer (scores and weighted sum; n² in full even under a causal mask, as FLOP counters do);
backward costs 2x the forward, so training costs 3x, except for what gets no gradient: the four
condition strings' text tower and the condition mask (a hard threshold) run forward only, and the patch
embedding needs no gradient for its pixels (about 1% of a ViT-H step together). Model FLOPs exclude the
forward that activation checkpointing recomputes; `hardware_training` adds it (hardware FLOPs
utilisation). Norms, softmax, activations, embedding lookups and the loss are left out (well under 1%).

Pure Python on an MPSConfig: no torch, so a ViT-H count needs no model in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.mps.config import DIMENSIONS, MPSConfig


@dataclass(frozen=True)
class StepFlops:
    """Forward FLOPs of one step per part, for `pairs` pairs (two images and one prompt each)."""

    vision: float
    text: float
    mask: float
    cross: float
    recompute: float  # the tower blocks' forward again, when activation checkpointing is on
    without_backward: float  # forward FLOPs that no gradient flows back through (see the module doc)

    @property
    def forward(self) -> float:
        return self.vision + self.text + self.mask + self.cross

    @property
    def model_training(self) -> float:
        return 3 * self.forward - 2 * self.without_backward

    @property
    def hardware_training(self) -> float:
        return self.model_training + self.recompute


def transformer_blocks(*, sequences: int, length: int, width: int, layers: int, mlp_width: int) -> float:
    """Pre-norm blocks: q, k, v and out projections (4·w²), the MLP (2·w·mlp), attention over `length`."""
    matmuls = 2 * sequences * length * layers * (4 * width * width + 2 * width * mlp_width)
    attention = 2 * 2 * sequences * layers * length * length * width
    return float(matmuls + attention)


def vision_flops(config: MPSConfig, images: int) -> tuple[float, float]:
    """(whole tower, its transformer blocks) for `images` images: patch embedding, blocks, projection."""
    vision = config.clip["vision_cfg"]
    width, patch = vision["width"], vision["patch_size"]
    grid = config.image_size // patch
    tokens = 1 + grid * grid  # class token + patches
    blocks = transformer_blocks(sequences=images, length=tokens, width=width, layers=vision["layers"],
                                mlp_width=int(width * vision.get("mlp_ratio", 4.0)))  # fmt: skip
    patch_embedding = 2 * images * grid * grid * (3 * patch * patch) * width
    projection = 2 * images * tokens * width * config.embed_dim  # every token: the cross model reads them all
    return blocks + patch_embedding + projection, blocks


def text_flops(config: MPSConfig, sequences: int) -> tuple[float, float]:
    """(whole tower, its transformer blocks) for `sequences` token sequences of the context length."""
    text = config.clip["text_cfg"]
    width, length = text["width"], config.context_length
    blocks = transformer_blocks(sequences=sequences, length=length, width=width, layers=text["layers"],
                                mlp_width=int(width * text.get("mlp_ratio", 4.0)))  # fmt: skip
    projection = 2 * sequences * length * width * config.embed_dim
    return blocks + projection, blocks


def cross_flops(config: MPSConfig, images: int, image_tokens: int) -> float:
    """One pass of the cross model over `images` image-token sequences, each with its prompt's tokens."""
    dim, context = config.embed_dim, config.context_length
    inner, dim_head = config.cross_heads * config.cross_dim_head, config.cross_dim_head
    ff = config.cross_ff_mult * dim
    per_image_token = (
        dim * inner + inner * dim + dim * 2 * ff + ff * dim  # cross-attention: q, out, SwiGLU in and out
        + dim * (inner + 2 * dim_head + 2 * ff) + inner * dim + ff * dim  # parallel block: fused, out, ff out
    )  # fmt: skip
    per_context_token = dim * 2 * dim_head  # shared key/value of the prompt tokens
    matmuls = 2 * (image_tokens * per_image_token + context * per_context_token)
    attention = 2 * 2 * (image_tokens * context + image_tokens * image_tokens) * inner
    return float(images * config.cross_layers * (matmuls + attention))


def training_step_flops(config: MPSConfig, pairs: int, *, activation_checkpointing: bool = False) -> StepFlops:
    """What `PairScorer` computes for `pairs` pairs: the vision tower once per image, the text tower once per
    prompt and per condition, the condition mask and the cross model once per image and dimension."""
    conditions = len(DIMENSIONS)
    images = 2 * pairs
    vision, vision_blocks = vision_flops(config, images)
    text, text_blocks = text_flops(config, pairs + conditions)
    length, dim = config.context_length, config.embed_dim
    mask = float(conditions * 2 * pairs * length * length * dim)  # prompt x condition token similarities
    patch = config.clip["vision_cfg"]["patch_size"]
    grid = config.image_size // patch
    cross = conditions * cross_flops(config, images, 1 + grid * grid)
    # Recomputed in the backward: the blocks a gradient reaches (not the conditions' text tower).
    recompute = vision_blocks + text_blocks * pairs / (pairs + conditions) if activation_checkpointing else 0.0
    # Backward-free: the conditions' share of the text tower, the mask, and the pixels' half of the patch
    # embedding's backward (its weight gradient is computed, its input gradient is not), counted as half.
    pixels_gradient = images * grid * grid * (3 * patch * patch) * config.clip["vision_cfg"]["width"]
    without_backward = text * conditions / (pairs + conditions) + mask + pixels_gradient
    return StepFlops(vision=vision, text=text, mask=mask, cross=cross, recompute=recompute,
                     without_backward=without_backward)  # fmt: skip


def scoring_flops(config: MPSConfig, images: int, dimensions: int) -> float:
    """Forward FLOPs of scoring `images` images of one prompt on `dimensions` dimensions (MPSScorer)."""
    grid = config.image_size // config.clip["vision_cfg"]["patch_size"]
    text = text_flops(config, 1 + dimensions)[0]
    mask = dimensions * 2 * config.context_length**2 * config.embed_dim
    return vision_flops(config, images)[0] + text + mask + dimensions * cross_flops(config, images, 1 + grid * grid)

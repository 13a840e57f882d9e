"""Optimizer, learning-rate schedule and freezing."""

import math

import torch
from torch import nn

from training.mps.model import MPSModel


def freeze_unused(model: MPSModel) -> None:
    # Image tokens are taken before the vision post-layernorm: ln_post gets no gradient, and DDP
    # refuses parameters that never receive one.
    model.backbone.visual.ln_post.requires_grad_(False)


def freeze_lower_blocks(model: MPSModel, blocks: int) -> None:
    """Freeze the embeddings and the lower `blocks` residual blocks of both towers."""
    if blocks <= 0:
        return
    clip = model.backbone
    for module in (clip.token_embedding, clip.visual.conv1, clip.visual.ln_pre):
        module.requires_grad_(False)
    for parameter in (clip.positional_embedding, clip.visual.positional_embedding, clip.visual.class_embedding):
        parameter.requires_grad_(False)
    for tower in (clip.transformer, clip.visual.transformer):
        for block in tower.resblocks[:blocks]:
            block.requires_grad_(False)


def build_optimizer(module: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms, embeddings' scale or logit scale)."""
    decay, no_decay = [], []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def warmup_cosine(warmup_steps: int, total_steps: int):
    """Multiplier of the base learning rate: linear warm-up, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor

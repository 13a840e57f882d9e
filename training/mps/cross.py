"""The MPS cross model: image tokens attend to the prompt tokens kept by the condition mask.

Same computation as the reference ``trainer.models.cross_modeling.Cross_model`` (PaLM-style
multi-query attention: many query heads, one shared key/value head; parallel attention and
SwiGLU feed-forward; rotary positions in the self-attention block). Module names are ours;
checkpoints.py maps the reference names onto them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BiaslessLayerNorm(nn.Module):
    """LayerNorm with a learnable weight and a bias fixed at zero (kept as a buffer, like the reference)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.register_buffer("bias", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


def swiglu(x: torch.Tensor) -> torch.Tensor:
    value, gate = x.chunk(2, dim=-1)
    return F.silu(gate) * value


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotary_angles(length: int, dim_head: int, device: torch.device) -> torch.Tensor:
    """[length, dim_head] angles: position x inv_freq, duplicated to the full head width."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim_head, 2, device=device, dtype=torch.float32) / dim_head))
    freqs = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    return torch.cat((freqs, freqs), dim=-1)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return x * cos + rotate_half(x) * sin


def multi_query_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """q [B, H, N, dh]; k, v [B, M, dh] shared by every head; keep [B, M] bool -> [B, N, H*dh]."""
    batch, heads, _, dim_head = q.shape
    k = k.unsqueeze(1).expand(batch, heads, -1, dim_head)
    v = v.unsqueeze(1).expand(batch, heads, -1, dim_head)
    mask = None if keep is None else keep[:, None, None, :]  # [B, 1, 1, M], True = attend
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale dh^-0.5, as the reference
    return out.transpose(1, 2).reshape(batch, -1, heads * dim_head)


class CrossAttention(nn.Module):
    """Cross-attention from image tokens to prompt tokens plus a parallel feed-forward; returns the
    residual update (the caller adds it to ``x``)."""

    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.norm = BiaslessLayerNorm(dim)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)
        self.ff_in = nn.Linear(dim, 2 * ff_mult * dim, bias=False)
        self.ff_out = nn.Linear(ff_mult * dim, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # x [B, N, D] image tokens; context [B, M, D] prompt tokens (not normalised); keep [B, M]
        h = self.norm(x)
        q = self.to_q(h).unflatten(-1, (self.heads, self.dim_head)).transpose(1, 2)  # [B, H, N, dh]
        k, v = self.to_kv(context).chunk(2, dim=-1)  # [B, M, dh] each
        attended = multi_query_attention(q, k, v, keep)
        return self.to_out(attended) + self.ff_out(swiglu(self.ff_in(h)))


class ParallelBlock(nn.Module):
    """Self-attention (rotary, multi-query) and SwiGLU feed-forward from one fused projection."""

    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.split_sizes = (heads * dim_head, dim_head, dim_head, 2 * ff_mult * dim)
        self.norm = BiaslessLayerNorm(dim)
        self.fused_proj = nn.Linear(dim, sum(self.split_sizes), bias=False)
        self.attn_out = nn.Linear(heads * dim_head, dim, bias=False)
        self.ff_out = nn.Linear(ff_mult * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v, ff = self.fused_proj(h).split(self.split_sizes, dim=-1)
        q = q.unflatten(-1, (self.heads, self.dim_head)).transpose(1, 2)  # [B, H, N, dh]
        angles = rotary_angles(x.shape[1], self.dim_head, x.device)
        q, k = apply_rotary(q, angles), apply_rotary(k, angles)
        return self.attn_out(multi_query_attention(q, k, v)) + self.ff_out(swiglu(ff))


class CrossLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.cross_attn = CrossAttention(dim, heads, dim_head, ff_mult)
        self.self_block = ParallelBlock(dim, heads, dim_head, ff_mult)

    def forward(self, x: torch.Tensor, context: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.cross_attn(x, context, keep)
        return x + self.self_block(x)


class CrossModel(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, dim_head: int = 64, ff_mult: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrossLayer(dim, heads, dim_head, ff_mult) for _ in range(layers))

    def forward(
        self,
        image_tokens: torch.Tensor,
        prompt_tokens: torch.Tensor,
        keep: torch.Tensor,
    ) -> torch.Tensor:
        """image_tokens [B, N, D], prompt_tokens [B, L, D], keep [B, L] bool -> [B, N, D]."""
        x = image_tokens
        for layer in self.layers:
            x = layer(x, prompt_tokens, keep)
        return x

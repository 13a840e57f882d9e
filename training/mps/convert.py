"""The reference layout (transformers' CLIP under ``model.``, ``cross_model.``) -> MPSModel.

Widths, depths, patch size and the cross model's heads follow from tensor shapes; the towers' head
counts, activation and layer-norm eps do not (q, k and v are stored as full matrices), so they come
from the caller, the pickled transformers configs, or a named architecture, in that order.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, fields
from typing import Any

import torch

from .config import HF_PAD_ID, KNOWN_ARCHITECTURES, PUBLISHED_DIMENSIONS, MPSConfig
from .errors import CheckpointError
from .torch_compat import import_open_clip

_TEXT = "text_model."
_VISION = "vision_model."
_CROSS = "cross_model."

_LAYER_PARTS = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
_TOP_LEVEL = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
    "logit_scale": "logit_scale",
}
_TRANSPOSED = {"text_projection.weight": "text_projection", "visual_projection.weight": "visual.proj"}
_CROSS_PARTS = {
    "0.fn.norm.weight": "cross_attn.norm.weight",
    "0.fn.norm.bias": "cross_attn.norm.bias",
    "0.fn.to_q.weight": "cross_attn.to_q.weight",
    "0.fn.to_kv.weight": "cross_attn.to_kv.weight",
    "0.fn.to_out.weight": "cross_attn.to_out.weight",
    "0.fn.ff.0.weight": "cross_attn.ff_in.weight",
    "0.fn.ff.2.weight": "cross_attn.ff_out.weight",
    "1.fn.norm.weight": "self_block.norm.weight",
    "1.fn.norm.bias": "self_block.norm.bias",
    "1.fn.fused_attn_ff_proj.weight": "self_block.fused_proj.weight",
    "1.fn.attn_out.weight": "self_block.attn_out.weight",
    "1.fn.ff_out.1.weight": "self_block.ff_out.weight",
}
# Recomputed, not learnt: position ids and the rotary inverse frequencies.
_IGNORED = re.compile(r"(^|\.)position_ids$|\.rotary_emb\.inv_freq$")
_ENCODER_LAYER = re.compile(r"^(text_model|vision_model)\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_CROSS_LAYER = re.compile(r"^cross_model\.layers\.(\d+)\.(.+)$")


@dataclass
class TowerHints:
    """What shapes cannot tell: attention heads, activation, layer-norm eps, per tower where it matters."""

    text_heads: int | None = None
    vision_heads: int | None = None
    activation: str | None = None  # transformers' hidden_act names: "gelu", "quick_gelu", "gelu_new"...
    layer_norm_eps: float | None = None

    def merged_with(self, other: TowerHints) -> TowerHints:
        """These hints, with gaps filled from ``other``."""
        filled = {}
        for item in fields(self):
            mine = getattr(self, item.name)
            filled[item.name] = getattr(other, item.name) if mine is None else mine
        return TowerHints(**filled)


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DDP's ``module.`` and the authors' ``model.`` prefix (kept off ``cross_model.``)."""
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return {key[len("model.") :] if key.startswith("model.") else key: value for key, value in state.items()}


def is_reference_layout(state: dict[str, Any]) -> bool:
    has_cross = any(key.startswith(_CROSS) for key in state)
    return "text_model.embeddings.token_embedding.weight" in state and has_cross


def hints_from_hf_configs(configs: dict[str, dict[str, Any]]) -> TowerHints:
    """Head counts, activation and eps from pickled transformers CLIP config objects' attributes."""
    text = _find_config(configs, "CLIPTextConfig", "text_config")
    vision = _find_config(configs, "CLIPVisionConfig", "vision_config")
    activations = {cfg.get("hidden_act") for cfg in (text, vision) if cfg and cfg.get("hidden_act")}
    eps_values = {cfg.get("layer_norm_eps") for cfg in (text, vision) if cfg and cfg.get("layer_norm_eps")}
    if len(activations) > 1 or len(eps_values) > 1:
        raise CheckpointError(
            f"text and vision towers differ in activation/eps ({activations}, {eps_values}); "
            "open_clip's CLIP uses one for both"
        )
    return TowerHints(
        text_heads=(text or {}).get("num_attention_heads"),
        vision_heads=(vision or {}).get("num_attention_heads"),
        activation=next(iter(activations), None),
        layer_norm_eps=next(iter(eps_values), None),
    )


def _find_config(
    configs: dict[str, dict[str, Any]],
    class_suffix: str,
    attribute: str,
) -> dict[str, Any] | None:
    for qualname, attrs in configs.items():
        if qualname.endswith("." + class_suffix):
            return attrs
    for attrs in configs.values():  # older transformers kept tower configs as plain dicts
        if isinstance(attrs.get(attribute), dict):
            return attrs[attribute]
    return None


def hints_from_architecture(name: str) -> TowerHints:
    clip = KNOWN_ARCHITECTURES.get(name) or import_open_clip().get_model_config(name)
    if clip is None:
        raise CheckpointError(f"unknown architecture {name!r}: not built in, not an open_clip model config")
    vision = clip["vision_cfg"]
    return TowerHints(
        text_heads=clip["text_cfg"].get("heads", 8),
        vision_heads=vision["width"] // vision.get("head_width", 64),
        activation="quick_gelu" if clip.get("quick_gelu") else "gelu",
        layer_norm_eps=1e-5,
    )


def _count_layers(state: dict[str, Any], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    return max(indices) + 1 if indices else 0


def _shape(state: dict[str, torch.Tensor], key: str) -> torch.Size:
    if key not in state:
        raise CheckpointError(f"checkpoint is missing {key!r}: not a complete MPS checkpoint")
    return state[key].shape


def shape_summary(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Everything the reference-layout tensors say about the architecture."""
    token = _shape(state, "text_model.embeddings.token_embedding.weight")  # [vocab, text width]
    patch = _shape(state, "vision_model.embeddings.patch_embedding.weight")  # [width, 3, p, p]
    positions = _shape(state, "vision_model.embeddings.position_embedding.weight")[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise CheckpointError(f"vision position embedding has {positions} rows, not 1 + a square")
    embed_dim = _shape(state, "text_projection.weight")[0]
    to_kv = _shape(state, "cross_model.layers.0.0.fn.to_kv.weight")  # [2 * dim_head, D]
    dim_head = to_kv[0] // 2
    return {
        "embed_dim": embed_dim,
        "vocab_size": token[0],
        "text_width": token[1],
        "context_length": _shape(state, "text_model.embeddings.position_embedding.weight")[0],
        "text_layers": _count_layers(state, "text_model.encoder.layers."),
        "text_mlp": _shape(state, "text_model.encoder.layers.0.mlp.fc1.weight")[0],
        "vision_width": patch[0],
        "patch_size": patch[2],
        "image_size": patch[2] * grid,
        "vision_layers": _count_layers(state, "vision_model.encoder.layers."),
        "vision_mlp": _shape(state, "vision_model.encoder.layers.0.mlp.fc1.weight")[0],
        "cross_layers": _count_layers(state, "cross_model.layers."),
        "cross_dim_head": dim_head,
        "cross_heads": _shape(state, "cross_model.layers.0.0.fn.to_q.weight")[0] // dim_head,
        "cross_ff_mult": _shape(state, "cross_model.layers.0.0.fn.ff.0.weight")[0] // (2 * embed_dim),
    }


def matching_architecture(shapes: dict[str, int]) -> str | None:
    """The built-in architecture whose towers have these widths and depths, if any."""
    for name, clip in KNOWN_ARCHITECTURES.items():
        text, vision = clip["text_cfg"], clip["vision_cfg"]
        if (
            clip["embed_dim"],
            text["width"],
            text["layers"],
            vision["width"],
            vision["layers"],
            vision["patch_size"],
        ) == (
            shapes["embed_dim"],
            shapes["text_width"],
            shapes["text_layers"],
            shapes["vision_width"],
            shapes["vision_layers"],
            shapes["patch_size"],
        ):
            return name
    return None


def _activation_cfg(activation: str) -> tuple[bool, dict[str, Any] | None]:
    """transformers' hidden_act -> (open_clip quick_gelu flag, act_kwargs)."""
    if activation == "gelu":
        return False, None
    if activation == "quick_gelu":
        return True, None
    if activation in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return False, {"approximate": "tanh"}
    raise CheckpointError(f"unsupported tower activation {activation!r}")


def _head_width(width: int, heads: int, tower: str) -> int:
    if width % heads:
        raise CheckpointError(f"{tower} width {width} is not divisible by {heads} heads")
    return width // heads


# open_clip's own defaults (LAION-trained CLIPs, ViT-H-14 included); OpenAI's CLIPs need "quick_gelu".
DEFAULT_HINTS = TowerHints(activation="gelu", layer_norm_eps=1e-5)


def build_config(shapes: dict[str, int], hints: TowerHints, architecture: str | None) -> MPSConfig:
    """MPSConfig from shapes plus hints; head counts required, activation and eps default to open_clip's."""
    if hints.text_heads is None or hints.vision_heads is None:
        raise CheckpointError(
            "cannot tell the towers' attention head counts from a bare state dict "
            f"(text width {shapes['text_width']}, vision width {shapes['vision_width']}): pass "
            "text_heads=, vision_heads= (and activation=, layer_norm_eps= if not gelu/1e-5) or architecture="
        )
    hints = hints.merged_with(DEFAULT_HINTS)
    quick_gelu, act_kwargs = _activation_cfg(hints.activation)
    norm_kwargs = None if hints.layer_norm_eps == 1e-5 else {"eps": hints.layer_norm_eps}
    vision_cfg = {
        "image_size": shapes["image_size"],
        "layers": shapes["vision_layers"],
        "width": shapes["vision_width"],
        "head_width": _head_width(shapes["vision_width"], hints.vision_heads, "vision"),
        "patch_size": shapes["patch_size"],
        "mlp_ratio": shapes["vision_mlp"] / shapes["vision_width"],
    }
    text_cfg = {
        "context_length": shapes["context_length"],
        "vocab_size": shapes["vocab_size"],
        "width": shapes["text_width"],
        "heads": hints.text_heads,
        "layers": shapes["text_layers"],
        "mlp_ratio": shapes["text_mlp"] / shapes["text_width"],
    }
    _head_width(shapes["text_width"], hints.text_heads, "text")
    for tower in (vision_cfg, text_cfg):
        if act_kwargs:
            tower["act_kwargs"] = dict(act_kwargs)
        if norm_kwargs:
            tower["norm_kwargs"] = dict(norm_kwargs)
    clip = {
        "embed_dim": shapes["embed_dim"],
        "quick_gelu": quick_gelu,
        "vision_cfg": vision_cfg,
        "text_cfg": text_cfg,
    }
    return MPSConfig(
        clip=copy.deepcopy(clip),
        cross_layers=shapes["cross_layers"],
        cross_heads=shapes["cross_heads"],
        cross_dim_head=shapes["cross_dim_head"],
        cross_ff_mult=shapes["cross_ff_mult"],
        architecture=architecture,
        pretrained=None,
        # The authors' (transformers) layout: their Hugging Face tokenizer pads with <|endoftext|>, and
        # the one released checkpoint was trained on "overall" only (load_checkpoint can say otherwise).
        pad_id=HF_PAD_ID,
        trained_dimensions=PUBLISHED_DIMENSIONS,
    )


def _map_encoder_layer(match: re.Match, state: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> bool:
    tower, index, part, kind = match.groups()
    base = ("visual.transformer" if tower == "vision_model" else "transformer") + f".resblocks.{index}"
    if part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
        prefix = f"{tower}.encoder.layers.{index}.self_attn."
        qkv = [state.get(f"{prefix}{name}_proj.{kind}") for name in ("q", "k", "v")]
        # q, k, v -> one in_proj, in that order; when one is absent, in_proj is reported missing later
        if part == "self_attn.q_proj" and all(tensor is not None for tensor in qkv):
            out[f"{base}.attn.in_proj_{kind}"] = torch.cat(qkv, dim=0)
        return True
    if part in _LAYER_PARTS:
        out[f"{base}.{_LAYER_PARTS[part]}.{kind}"] = state[match.group(0)]
        return True
    return False


def _map_key(key: str, state: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> bool:
    """Put ``state[key]`` (reference layout) into ``out`` (MPSModel layout); False if unknown."""
    if key in _TOP_LEVEL:
        out["backbone." + _TOP_LEVEL[key]] = state[key]
        return True
    if key in _TRANSPOSED:
        out["backbone." + _TRANSPOSED[key]] = state[key].t().contiguous()
        return True
    if (match := _ENCODER_LAYER.match(key)) is not None:
        mapped: dict[str, torch.Tensor] = {}
        known = _map_encoder_layer(match, state, mapped)
        out.update({"backbone." + name: value for name, value in mapped.items()})
        return known
    if (match := _CROSS_LAYER.match(key)) is not None and match.group(2) in _CROSS_PARTS:
        out[f"cross.layers.{match.group(1)}.{_CROSS_PARTS[match.group(2)]}"] = state[key]
        return True
    return False


def convert_reference_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference-layout tensors (prefixes stripped) -> an MPSModel state dict; refuses unknown keys."""
    out: dict[str, torch.Tensor] = {}
    unknown = [key for key in state if not _IGNORED.search(key) and not _map_key(key, state, out)]
    if unknown:
        raise CheckpointError(f"checkpoint has {len(unknown)} tensors MPS does not know, e.g. {unknown[:5]}")
    return out

"""MPS configuration, the four dimensions and their condition strings (the one place they live)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Dimension identifier -> condition text used with the released MPS model (fixture README).
DIMENSION_CONDITIONS: dict[str, str] = {
    "aesthetics": "light, color, clarity, tone, style, ambiance, artistry",
    "detail": "shape, face, hair, hands, limbs, structure, instance, texture",
    "alignment": "quantity, attributes, position, number, location",
    "overall": (
        "light, color, clarity, tone, style, ambiance, artistry, shape, face, hair, hands, limbs, "
        "structure, instance, texture, quantity, attributes, position, number, location, word, things."
    ),
}
DIMENSIONS: tuple[str, ...] = ("aesthetics", "detail", "alignment", "overall")
# Only the overall model of MPS was released: the dimension a checkpoint in the authors' layout was trained on.
PUBLISHED_DIMENSIONS: tuple[str, ...] = ("overall",)

# The published evaluation keeps prompt tokens whose normalised similarity exceeds 0.3;
# the reference training forward uses 0.01.
SCORING_THRESHOLD = 0.3
TRAINING_THRESHOLD = 0.01

# Token id after a text's end token (see tokenizer.py): the Hugging Face CLIP tokenizer's pad token
# <|endoftext|> for MPS and PickScore-format models (and models trained here), 0 for open_clip-native ones.
HF_PAD_ID = 49407
OPEN_CLIP_PAD_ID = 0
PAD_IDS = (HF_PAD_ID, OPEN_CLIP_PAD_ID)

DEFAULT_ARCHITECTURE = "ViT-H-14"
DEFAULT_PRETRAINED = "laion2b_s32b_b79k"

# open_clip's ViT-H-14 model JSON (text 16 heads of 64, vision 16 heads of 80, exact GELU).
VIT_H_14_CLIP: dict[str, Any] = {
    "embed_dim": 1024,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 224, "layers": 32, "width": 1280, "head_width": 80, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 1024, "heads": 16, "layers": 24},
}

# Architectures whose head counts and activation a bare state dict can be matched against.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {"ViT-H-14": VIT_H_14_CLIP}


def dimension_condition(dimension: str) -> str:
    """Condition text of a dimension; refuses an unknown identifier with the valid ones."""
    try:
        return DIMENSION_CONDITIONS[dimension]
    except KeyError:
        valid = ", ".join(DIMENSIONS)
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {valid}") from None


def check_pad_id(pad_id: int) -> int:
    if type(pad_id) is not int or pad_id not in PAD_IDS:
        raise ValueError(
            f"pad id must be {HF_PAD_ID} (MPS, PickScore) or {OPEN_CLIP_PAD_ID} (open_clip); got {pad_id!r}"
        )
    return pad_id


def check_trained_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    """The dimensions a checkpoint was trained on, validated, in DIMENSIONS order."""
    if isinstance(dimensions, str) or not dimensions:
        raise ValueError(f"trained dimensions must be a non-empty list out of {', '.join(DIMENSIONS)}")
    for dimension in dimensions:
        dimension_condition(dimension)
    return tuple(dimension for dimension in DIMENSIONS if dimension in dimensions)


@dataclass
class MPSConfig:
    """Everything needed to build an :class:`~training.mps.model.MPSModel` (weights aside).

    ``clip`` is an open_clip model config (its model JSON: ``embed_dim``, ``vision_cfg``, ``text_cfg``,
    optionally ``quick_gelu``), passed as is to ``open_clip.model.CLIP``.
    """

    clip: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(VIT_H_14_CLIP))
    cross_layers: int = 4
    cross_heads: int = 16
    cross_dim_head: int = 64
    cross_ff_mult: int = 4
    # Informational: which open_clip architecture / pretrained tag the backbone came from.
    architecture: str | None = DEFAULT_ARCHITECTURE
    pretrained: str | None = DEFAULT_PRETRAINED
    # How prompts and conditions are padded for this model (the published convention by default).
    pad_id: int = HF_PAD_ID
    # The dimensions whose conditions the model was trained on (the trainer trains all four; the
    # published checkpoint only "overall"); scoring another one is refused unless asked for.
    trained_dimensions: tuple[str, ...] = DIMENSIONS

    def __post_init__(self) -> None:
        check_pad_id(self.pad_id)
        self.trained_dimensions = check_trained_dimensions(self.trained_dimensions)

    @property
    def embed_dim(self) -> int:
        return int(self.clip["embed_dim"])

    @property
    def context_length(self) -> int:
        return int(self.clip["text_cfg"].get("context_length", 77))

    @property
    def image_size(self) -> int:
        size = self.clip["vision_cfg"].get("image_size", 224)
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trained_dimensions"] = list(self.trained_dimensions)  # JSON has no tuples
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MPSConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown MPSConfig fields: {', '.join(sorted(unknown))}")
        if "clip" in data and not {"embed_dim", "vision_cfg", "text_cfg"} <= set(data["clip"]):
            raise ValueError("MPSConfig.clip needs embed_dim, vision_cfg and text_cfg")
        return cls(**copy.deepcopy(data))


def tiny_config() -> MPSConfig:
    """The fixture's tiny configuration: fast enough for CPU tests and benchmarks."""
    return MPSConfig(
        clip={
            "embed_dim": 128,
            "quick_gelu": False,
            "vision_cfg": {"image_size": 224, "layers": 2, "width": 96, "head_width": 48, "patch_size": 32},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
        },
        cross_layers=2,
        cross_heads=2,
        cross_dim_head=64,
        cross_ff_mult=4,
        architecture=None,
        pretrained=None,
    )

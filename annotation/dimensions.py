"""The four judgement dimensions: identifiers are the same in models, API, exports and commands."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    key: str
    label: str
    guideline: str


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "aesthetics",
        "Aesthetics",
        "Composition, light and contrast, colour, clarity, tone, style, depth of field, atmosphere, artistry.",
    ),
    Dimension(
        "detail",
        "Detail quality",
        "Textures, hair, faces, hands and limbs free of distortion; no blur or deformed objects.",
    ),
    Dimension(
        "alignment",
        "Semantic alignment",
        "Quantity, attributes, positions and relations as the prompt says; nothing missing or extra.",
    ),
    Dimension("overall", "Overall", "Your whole judgement of which image is better for this prompt."),
)
DIMENSION_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS)

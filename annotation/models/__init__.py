from annotation.models.images import Generator, GeneratorFamily, Image
from annotation.models.jobs import AugmentationJob, ImportJob, ImportKind
from annotation.models.labeling import (
    Adjudication,
    AnnotatorProfile,
    Choice,
    Judgement,
    Pair,
    PairKind,
    PairLease,
    PairSkip,
    Side,
)
from annotation.models.prompts import (
    Category,
    Prompt,
    PromptLease,
    PromptOrigin,
    PromptReview,
    PromptStatus,
    RejectionReason,
    ReviewDecision,
)

__all__ = [
    "Adjudication",
    "AnnotatorProfile",
    "AugmentationJob",
    "Category",
    "Choice",
    "Generator",
    "GeneratorFamily",
    "Image",
    "ImportJob",
    "ImportKind",
    "Judgement",
    "Pair",
    "PairKind",
    "PairLease",
    "PairSkip",
    "Prompt",
    "PromptLease",
    "PromptOrigin",
    "PromptReview",
    "PromptStatus",
    "RejectionReason",
    "ReviewDecision",
    "Side",
]

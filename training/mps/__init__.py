"""MPS (Multi-dimensional Preference Score) reward model, pure PyTorch + open_clip.

Only GPU workers and management commands import this package: it imports torch.
"""

from .checkpoints import (
    convert_checkpoint,
    load_checkpoint,
    read_checkpoint_state,
    read_pickled_module,
    save_checkpoint,
)
from .config import (
    DIMENSION_CONDITIONS,
    DIMENSIONS,
    SCORING_THRESHOLD,
    TRAINING_THRESHOLD,
    MPSConfig,
    dimension_condition,
    tiny_config,
)
from .errors import CheckpointError
from .model import MPSModel, condition_keep_mask
from .preprocess import preprocess_images
from .pretrained import build_model
from .scorer import MPSScorer, UntrainedDimensionError, format_scores_table, preference_matrix, score_images
from .tokenizer import tokenize
from .torch_compat import import_open_clip

__all__ = [
    "DIMENSIONS",
    "DIMENSION_CONDITIONS",
    "SCORING_THRESHOLD",
    "TRAINING_THRESHOLD",
    "CheckpointError",
    "MPSConfig",
    "MPSModel",
    "MPSScorer",
    "build_model",
    "condition_keep_mask",
    "convert_checkpoint",
    "dimension_condition",
    "format_scores_table",
    "import_open_clip",
    "load_checkpoint",
    "preference_matrix",
    "preprocess_images",
    "read_checkpoint_state",
    "read_pickled_module",
    "save_checkpoint",
    "score_images",
    "tiny_config",
    "tokenize",
    "UntrainedDimensionError",
]

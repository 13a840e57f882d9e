"""The MPS training objective: per dimension, KL(human label || softmax of the two images' scores)."""

import torch
import torch.nn.functional as F
from torch import nn

from training.mps.config import DIMENSIONS, HF_PAD_ID, dimension_condition
from training.mps.model import MPSModel, condition_keep_mask
from training.mps.tokenizer import tokenize

# Models trained here follow the published convention (prompts and conditions padded with <|endoftext|>).
TRAINING_PAD_ID = HF_PAD_ID


def condition_token_ids() -> torch.Tensor:
    """[dimensions, 77]: the condition string of each dimension, in DIMENSIONS order."""
    return tokenize([dimension_condition(d) for d in DIMENSIONS], pad_id=TRAINING_PAD_ID)


class PairScorer(nn.Module):
    """Scores both images of each pair under every dimension's condition: [dimensions, B, 2].

    A module of its own so that DistributedDataParallel wraps the whole computation. The vision tower runs
    once per image and the text tower once per prompt and per condition; only the cross model runs once per
    dimension.
    """

    def __init__(self, model: MPSModel, mask_threshold: float) -> None:
        super().__init__()
        self.model, self.mask_threshold = model, mask_threshold
        # What the saved checkpoint says of itself: how it was padded and that every dimension was trained.
        model.config.pad_id, model.config.trained_dimensions = TRAINING_PAD_ID, DIMENSIONS
        self.register_buffer("condition_ids", condition_token_ids(), persistent=False)

    def forward(self, prompt_ids: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        batch = prompt_ids.shape[0]
        image_tokens = self.model.encode_image_tokens(pixel_values.flatten(0, 1))  # [2B, N, D]
        prompt_tokens, prompt_pooled = self.model.encode_text_tokens(prompt_ids)  # [B, L, D], [B, D]
        condition_tokens, _ = self.model.encode_text_tokens(self.condition_ids)  # [C, L, D]
        prompt_tokens2 = prompt_tokens.repeat_interleave(2, dim=0)  # [2B, L, D]: image order first, second
        pooled2 = prompt_pooled.repeat_interleave(2, dim=0)
        scores = []
        for condition in condition_tokens:
            keep = condition_keep_mask(prompt_tokens, condition.expand(batch, -1, -1), self.mask_threshold)
            keep2 = keep.repeat_interleave(2, dim=0)
            scores.append(self.model.score_features(image_tokens, prompt_tokens2, pooled2, keep2).view(batch, 2))
        return torch.stack(scores)  # [C, B, 2]


def preference_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """scores [C, B, 2], labels [B, C, 2] (probabilities) -> KL summed over dimensions, mean over pairs."""
    log_predicted = F.log_softmax(scores.float(), dim=-1)
    target = labels.transpose(0, 1).float()  # [C, B, 2]
    # xlogy-based: a 0 probability in the label contributes 0, not NaN.
    kl = F.kl_div(log_predicted, target, reduction="none").sum(dim=-1)  # [C, B]
    return kl.sum(dim=0).mean()


def correct_and_counted(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per dimension, pairs whose label is not a tie and how many of them the scores order correctly."""
    target = labels.transpose(0, 1)  # [C, B, 2]
    decided = target[..., 0] != target[..., 1]
    human_first = target[..., 0] > target[..., 1]
    model_first = scores[..., 0] > scores[..., 1]
    correct = (decided & (human_first == model_first)).sum(dim=1)
    return correct, decided.sum(dim=1)

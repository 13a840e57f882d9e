"""Prompt and condition tokenizer: CLIP BPE (open_clip ships the vocabulary), 77 positions.

Layout of a row: start 49406, BPE ids, end 49407, then the model's pad id up to 77. The pad id is part
of a model's configuration (``MPSConfig.pad_id``) because the MPS condition mask and cross-attention
see every position, padding included:
- MPS and PickScore-format models (the authors tokenize with the Hugging Face CLIP tokenizer of
  ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``, ``padding="max_length"``, pad token ``<|endoftext|>``)
  pad with 49407 (``HF_PAD_ID``); models trained here follow that convention;
- open_clip-native models (CLIP score, HPS v2) pad with 0 (``OPEN_CLIP_PAD_ID``).
A text too long keeps its first tokens and still ends with the end token, which the text tower pools
at (the first position holding the largest id, so 49407 padding after it changes nothing there).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from .config import check_pad_id
from .torch_compat import import_open_clip

START_ID = 49406
END_ID = 49407
CONTEXT_LENGTH = 77


@lru_cache(maxsize=1)
def _bpe():
    # Building the BPE tables takes ~1 s; every caller shares one (it is read-only after its cache warms).
    return import_open_clip().tokenizer.SimpleTokenizer(context_length=CONTEXT_LENGTH)


def token_ids(text: str, context_length: int = CONTEXT_LENGTH) -> list[int]:
    """Ids of one text, start and end tokens included, truncated to ``context_length`` (no padding)."""
    if context_length < 2:
        raise ValueError("context_length must leave room for the start and end tokens")
    body = _bpe().encode(text)[: context_length - 2]
    return [START_ID, *body, END_ID]


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, *, pad_id: int) -> torch.Tensor:
    """[N, context_length] int64 ids for one text or a sequence of texts, padded with ``pad_id``
    (no default on purpose: the model being fed decides, see the module docstring)."""
    if isinstance(texts, str):
        texts = [texts]
    result = torch.full((len(texts), context_length), check_pad_id(pad_id), dtype=torch.long)
    for row, text in enumerate(texts):
        ids = token_ids(text, context_length)
        result[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return result

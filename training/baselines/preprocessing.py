"""Each baseline's own image preprocessing, as its reference code does it. Images differ in aspect ratio
(MHP has many), and each model was trained and evaluated with one way of making them square:

- HPS v2 (tgxs002/HPSv2: ``create_model_and_transforms(light_augmentation=True)`` gives
  ``image_transform(..., resize_longest_max=True)``): RGB, ``ToTensor``, then ``ResizeMaxSize`` on the
  tensor: the longest side to 224 (each side ``round(side * scale)``, bicubic, torchvision's tensor resize
  with its current default antialiasing), zero padding (black before normalisation) to a square, the left
  and top getting half of it rounded down; OpenAI CLIP mean/std. Where the longest side is already 224 the
  reference neither resizes nor pads, which its model cannot take for a non-square image: we pad it.
- PickScore (a transformers ``CLIPProcessor``, ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``'s): RGB, the
  shortest side to 224 with PIL's bicubic (long side ``int(224 * long / short)``), a centre crop whose
  offset is rounded down (``(height - 224) // 2``; torchvision rounds half to even), /255, OpenAI mean/std.
- CLIP score and the LAION aesthetic predictor: open_clip's (OpenAI CLIP's) evaluation transform,
  ``training.mps.preprocess.image_transform``.
- ImageReward: its package applies its own BLIP transform.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from training.mps.torch_compat import ensure_torchvision_importable

# OpenAI CLIP's normalisation, used by all three CLIP-based models.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

Transform = Callable[[Image.Image], torch.Tensor]


def _normalize(pixels: torch.Tensor) -> torch.Tensor:
    """[3, H, W] in 0..1 -> CLIP-normalised."""
    mean = torch.tensor(CLIP_MEAN, dtype=pixels.dtype)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=pixels.dtype)[:, None, None]
    return (pixels - mean) / std


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> [3, H, W] float32 in 0..1 (torchvision's ToTensor)."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255)


def hps_v2_transform(size: int) -> Transform:
    """HPS v2's evaluation transform: longest side to ``size``, zero-padded to a square."""
    ensure_torchvision_importable()
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    def transform(image: Image.Image) -> torch.Tensor:
        pixels = _to_tensor(image)
        height, width = pixels.shape[1:]
        scale = size / float(max(height, width))
        if scale != 1.0:
            new_size = [round(side * scale) for side in (height, width)]
            pixels = F.resize(pixels, new_size, InterpolationMode.BICUBIC, antialias=True)
        pad_h, pad_w = size - pixels.shape[1], size - pixels.shape[2]
        pixels = F.pad(pixels, [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=0)
        return _normalize(pixels)

    return transform


def clip_processor_transform(size: int) -> Transform:
    """transformers' CLIPImageProcessor (PickScore): shortest side to ``size``, centre crop rounded down."""

    def transform(image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        width, height = image.size
        short, long = sorted((width, height))
        new_long = int(size * long / short)
        new_width, new_height = (size, new_long) if width <= height else (new_long, size)
        resized = image.resize((new_width, new_height), resample=Image.BICUBIC)
        top, left = (new_height - size) // 2, (new_width - size) // 2
        return _normalize(_to_tensor(resized)[:, top : top + size, left : left + size])

    return transform

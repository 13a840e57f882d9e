"""Each baseline's preprocessing against its reference code, written out here as the reference does it:
HPS v2's open_clip fork (tgxs002/HPSv2, hpsv2/src/open_clip/transform.py) and transformers'
CLIPImageProcessor (PickScore's CLIPProcessor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from training.baselines.preprocessing import CLIP_MEAN, CLIP_STD, clip_processor_transform, hps_v2_transform
from training.mps.preprocess import image_transform
from training.mps.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, ToTensor  # noqa: E402
from torchvision.transforms import functional as F  # noqa: E402


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    array = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8).numpy()
    return Image.fromarray(array, mode="RGB")


class ReferenceResizeMaxSize(torch.nn.Module):
    """HPS v2's ResizeMaxSize, as in their transform.py."""

    def __init__(self, max_size, interpolation=InterpolationMode.BICUBIC, fn="max", fill=0):
        super().__init__()
        self.max_size, self.interpolation, self.fill = max_size, interpolation, fill

    def forward(self, img):
        if isinstance(img, torch.Tensor):
            height, width = img.shape[1:]
        else:
            width, height = img.size
        scale = self.max_size / float(max(height, width))
        if scale != 1.0:
            new_size = tuple(round(dim * scale) for dim in (height, width))
            img = F.resize(img, new_size, self.interpolation)
            pad_h = self.max_size - new_size[0]
            pad_w = self.max_size - new_size[1]
            img = F.pad(img, padding=[pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=self.fill)
        return img


def reference_hps_v2(image: Image.Image) -> torch.Tensor:
    # image_transform(224, is_train=False, resize_longest_max=True) of their fork
    return Compose(
        [lambda im: im.convert("RGB"), ToTensor(), ReferenceResizeMaxSize(224, fill=0), Normalize(CLIP_MEAN, CLIP_STD)]
    )(image)


@pytest.mark.parametrize("size", [(160, 96), (96, 160), (640, 427), (300, 301)])
def test_hps_v2_preprocessing_equals_the_reference_on_non_square_images(size):
    image = _image(*size)
    ours = hps_v2_transform(224)(image)
    assert ours.shape == (3, 224, 224)
    torch.testing.assert_close(ours, reference_hps_v2(image), atol=0, rtol=0)


def test_hps_v2_pads_where_the_shortest_side_crop_would_cut():
    image = _image(160, 96)
    ours = hps_v2_transform(224)(image)
    black = ((torch.zeros(3) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD))[:, None]
    assert torch.allclose(ours[:, :45, :], black[:, :, None].expand(3, 45, 224))  # (224 - 134) // 2 rows on top
    assert torch.allclose(ours[:, -45:, :], black[:, :, None].expand(3, 45, 224))
    assert not torch.allclose(ours, image_transform(224)(image), atol=1e-2)  # not the centre crop


def test_hps_v2_pads_an_image_whose_longest_side_is_already_the_size():
    # the reference returns it unpadded (224 x 100), which its model refuses; we make it square
    ours = hps_v2_transform(224)(_image(224, 100))
    assert ours.shape == (3, 224, 224)


def reference_clip_image_processor(image: Image.Image, size: int = 224) -> torch.Tensor:
    """transformers' CLIPImageProcessor.preprocess with laion/CLIP-ViT-H-14's config, step by step."""
    array = np.array(image.convert("RGB"))  # convert_rgb, to_numpy_array
    height, width = array.shape[:2]
    short, long = (width, height) if width <= height else (height, width)  # get_resize_output_image_size
    new_short, new_long = size, int(size * long / short)
    out_height, out_width = (new_long, new_short) if width <= height else (new_short, new_long)
    array = np.array(Image.fromarray(array).resize((out_width, out_height), resample=Image.BICUBIC))  # resize
    top, left = (out_height - size) // 2, (out_width - size) // 2  # center_crop
    array = array[top : top + size, left : left + size]
    array = (array.astype(np.float64) * (1 / 255)).astype(np.float32)  # rescale
    array = (array - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)  # normalize
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


@pytest.mark.parametrize("size", [(375, 224), (224, 375), (513, 300), (256, 256)])
def test_pickscore_preprocessing_equals_transformers_clip_image_processor(size):
    image = _image(*size, seed=1)
    ours = clip_processor_transform(224)(image)
    assert ours.shape == (3, 224, 224)
    torch.testing.assert_close(ours, reference_clip_image_processor(image), atol=2e-6, rtol=0)


def test_the_processors_centre_crop_rounds_down_where_torchvision_rounds_half_to_even():
    image = _image(375, 224, seed=2)  # 151 columns to drop: transformers keeps 75 on the left, torchvision 76
    ours = clip_processor_transform(224)(image)
    torchvision_crop = Compose([CenterCrop(224), ToTensor(), Normalize(CLIP_MEAN, CLIP_STD)])(image)
    torch.testing.assert_close(ours[:, :, 1:], torchvision_crop[:, :, :-1], atol=2e-6, rtol=0)
    assert not torch.allclose(ours, torchvision_crop, atol=1e-3)

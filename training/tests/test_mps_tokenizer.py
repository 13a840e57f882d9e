"""Tokenizer and image preprocessing."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from training.mps import preprocess_images, tokenize
from training.mps.tokenizer import END_ID, PAD_ID, START_ID

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def test_ids_have_start_end_and_zero_padding_to_77():
    ids = tokenize(["a photo of a cat", "Light, color"])
    assert ids.shape == (2, 77) and ids.dtype == torch.long
    assert ids[0, :7].tolist() == [START_ID, 320, 1125, 539, 320, 2368, END_ID]
    assert (ids[0, 7:] == PAD_ID).all()
    assert ids[1, 0] == START_ID and (ids[1] == END_ID).sum() == 1


def test_single_string_gives_one_row():
    assert tokenize("a dog").shape == (1, 77)


def test_long_text_is_truncated_keeping_the_end_token():
    ids = tokenize("cat " * 200)[0]
    assert ids.shape == (77,)
    assert ids[0] == START_ID and ids[-1] == END_ID
    assert (ids[1:-1] == ids[1]).all()  # every body token is "cat", no padding
    assert ids.argmax().item() == 76  # the text tower pools at the end token


def test_text_of_exactly_75_tokens_is_not_truncated():
    ids = tokenize("cat " * 75)[0]
    assert ids[-1] == END_ID and (ids[1:-1] == ids[1]).all()
    assert tokenize("cat " * 74)[0, -1] == PAD_ID


def test_images_get_bicubic_shortest_side_resize_centre_crop_and_clip_normalisation(tmp_path):
    generator = torch.Generator().manual_seed(0)
    array = torch.randint(0, 256, (240, 320, 3), generator=generator, dtype=torch.uint8).numpy()
    image = Image.fromarray(array, mode="RGB")
    path = tmp_path / "wide.png"
    image.save(path)
    pixels = preprocess_images([path, image.convert("L")], image_size=224)
    assert pixels.shape == (2, 3, 224, 224) and pixels.dtype == torch.float32
    resized = image.resize((298, 224), Image.BICUBIC).crop((37, 0, 37 + 224, 224))
    expected = torch.from_numpy(np.array(resized)).permute(2, 0, 1).float() / 255
    expected = (expected - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
    torch.testing.assert_close(pixels[0], expected, atol=1e-5, rtol=0)
    assert torch.allclose(
        pixels[1][0] * CLIP_STD[0] + CLIP_MEAN[0], pixels[1][1] * CLIP_STD[1] + CLIP_MEAN[1], atol=1e-5
    )  # a greyscale input becomes three equal channels

"""Tokenizer and image preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from training.mps import preprocess_images, tokenize
from training.mps.config import DIMENSION_CONDITIONS, HF_PAD_ID, OPEN_CLIP_PAD_ID
from training.mps.tokenizer import END_ID, START_ID, token_ids

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# "a photo of a cat" as the Hugging Face CLIP tokenizer of laion/CLIP-ViT-H-14-laion2B-s32B-b79K gives it with
# padding="max_length", max_length=77 (pad token <|endoftext|>), the authors' tokenization for MPS.
HF_CAT_ROW = [START_ID, 320, 1125, 539, 320, 2368, END_ID] + [END_ID] * 70


def test_mps_format_rows_follow_the_hugging_face_layout_padded_with_end_tokens():
    ids = tokenize(["a photo of a cat", DIMENSION_CONDITIONS["overall"]], pad_id=HF_PAD_ID)
    assert ids.shape == (2, 77) and ids.dtype == torch.long
    assert ids[0].tolist() == HF_CAT_ROW
    condition = ids[1].tolist()
    body = token_ids(DIMENSION_CONDITIONS["overall"])
    assert condition == body + [END_ID] * (77 - len(body))
    assert body[0] == START_ID and END_ID not in body[1:-1]
    assert ids.argmax(dim=-1).tolist() == [6, len(body) - 1]  # the pooling position is the real end token


def test_open_clip_native_rows_are_padded_with_zeros():
    ids = tokenize(["a photo of a cat", "Light, color"], pad_id=OPEN_CLIP_PAD_ID)
    assert ids[0].tolist() == HF_CAT_ROW[:7] + [0] * 70
    assert ids[1, 0] == START_ID and (ids[1] == END_ID).sum() == 1


@pytest.mark.parametrize("pad_id", [1, -1, 49406, "49407", None])
def test_other_pad_ids_are_refused(pad_id):
    with pytest.raises(ValueError, match="pad id must be 49407"):
        tokenize("a dog", pad_id=pad_id)


def test_single_string_gives_one_row():
    assert tokenize("a dog", pad_id=HF_PAD_ID).shape == (1, 77)


def test_long_text_is_truncated_keeping_the_end_token():
    ids = tokenize("cat " * 200, pad_id=HF_PAD_ID)[0]
    assert ids.shape == (77,)
    assert ids[0] == START_ID and ids[-1] == END_ID
    assert (ids[1:-1] == ids[1]).all()  # every body token is "cat", no padding
    assert ids.argmax().item() == 76  # the text tower pools at the end token


def test_text_of_exactly_75_tokens_is_not_truncated():
    ids = tokenize("cat " * 75, pad_id=OPEN_CLIP_PAD_ID)[0]
    assert ids[-1] == END_ID and (ids[1:-1] == ids[1]).all()
    assert tokenize("cat " * 74, pad_id=OPEN_CLIP_PAD_ID)[0, -1] == OPEN_CLIP_PAD_ID


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

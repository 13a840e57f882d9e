"""The published model's numbers, reproduced from the tiny checkpoint in the authors' format."""

from __future__ import annotations

import pytest
import torch

from training.mps import (
    DIMENSION_CONDITIONS,
    MPSModel,
    MPSScorer,
    condition_keep_mask,
    load_checkpoint,
    save_checkpoint,
)
from training.mps.tokenizer import _bpe

TOLERANCE = 1e-4


def _scores(model: MPSModel, rows, **options) -> torch.Tensor:
    prompt_ids, condition_ids, pixel_values = rows
    with torch.no_grad():
        return model.score_tokens(prompt_ids, condition_ids, pixel_values, **options)


def _assert_matches(scores: torch.Tensor, expected_pairs: list[dict]) -> None:
    pairs = scores.reshape(-1, 2)
    probs = pairs.softmax(dim=-1)
    for index, expected in enumerate(expected_pairs):
        assert pairs[index].tolist() == pytest.approx(expected["scores"], abs=TOLERANCE), f"pair {index}"
        assert probs[index].tolist() == pytest.approx(expected["probs"], abs=TOLERANCE), f"pair {index}"


def test_evaluation_path_threshold_0_3_matches_reference(mps_official_model, mps_rows, mps_expected):
    scores = _scores(mps_official_model, mps_rows, threshold=0.3)
    _assert_matches(scores, mps_expected["expected_eval_threshold_0_3"])


def test_each_image_scored_alone_matches_reference(mps_official_model, mps_rows, mps_expected):
    prompt_ids, condition_ids, pixel_values = mps_rows
    alone = torch.cat(
        [
            _scores(
                mps_official_model,
                (prompt_ids[i : i + 1], condition_ids[i : i + 1], pixel_values[i : i + 1]),
                threshold=0.3,
            )
            for i in range(pixel_values.shape[0])
        ]
    )
    _assert_matches(alone, mps_expected["expected_eval_threshold_0_3"])


def test_mask_keeps_the_documented_number_of_prompt_tokens(mps_official_model, mps_inputs, mps_expected):
    with torch.no_grad():
        prompt_tokens, _ = mps_official_model.encode_text_tokens(mps_inputs["prompt_ids"])
        condition_tokens, _ = mps_official_model.encode_text_tokens(mps_inputs["condition_ids"])
    kept = condition_keep_mask(prompt_tokens, condition_tokens, threshold=0.3).sum(dim=-1).tolist()
    assert kept == [pair["kept_prompt_tokens"] for pair in mps_expected["expected_eval_threshold_0_3"]]


def test_training_forward_threshold_0_01_matches_reference_batch_max_path(
    mps_official_model,
    mps_rows,
    mps_expected,
):
    # The reference forward divides by one maximum over the whole batch; "batch" reproduces that.
    scores = _scores(mps_official_model, mps_rows, threshold=0.01, mask_normalization="batch")
    _assert_matches(scores, mps_expected["expected_forward_threshold_0_01"])


def test_per_sample_mask_gives_the_forward_numbers_here_because_masks_coincide(
    mps_official_model, mps_inputs, mps_rows, mps_expected
):
    with torch.no_grad():
        prompt_tokens, _ = mps_official_model.encode_text_tokens(mps_inputs["prompt_ids"])
        condition_tokens, _ = mps_official_model.encode_text_tokens(mps_inputs["condition_ids"])
    per_sample = condition_keep_mask(prompt_tokens, condition_tokens, 0.01, "sample")
    batch_max = condition_keep_mask(prompt_tokens, condition_tokens, 0.01, "batch")
    assert torch.equal(per_sample, batch_max)  # at 0.01 no token sits between the two normalisations
    scores = _scores(mps_official_model, mps_rows, threshold=0.01)
    _assert_matches(scores, mps_expected["expected_forward_threshold_0_01"])


@pytest.mark.parametrize("target", ["directory", "model.safetensors"])
def test_round_trip_through_project_format_keeps_parity(
    mps_official_model,
    mps_rows,
    mps_expected,
    tmp_path,
    target,
):
    destination = tmp_path / target
    save_checkpoint(mps_official_model, destination)
    reloaded = load_checkpoint(destination)
    assert reloaded.config == mps_official_model.config
    _assert_matches(_scores(reloaded, mps_rows, threshold=0.3), mps_expected["expected_eval_threshold_0_3"])
    _assert_matches(
        _scores(reloaded, mps_rows, threshold=0.01, mask_normalization="batch"),
        mps_expected["expected_forward_threshold_0_01"],
    )


# Text to score. The fixture's own inputs are pre-tokenized with zeros (its README); the published model
# is fed the Hugging Face layout instead: start, BPE, end, then <|endoftext|> (49407) up to 77.
TEXT_PROMPT = "a watercolor painting of a lighthouse on a cliff at dusk, seagulls, crashing waves"


def _hugging_face_row(text: str, pad: int = 49407) -> list[int]:
    row = [49406, *_bpe().encode(text), 49407]
    return row + [pad] * (77 - len(row))


def test_scoring_text_equals_score_tokens_on_hugging_face_ids(mps_official_model, mps_inputs):
    pixels = mps_inputs["pixel_values"]
    scorer = MPSScorer(mps_official_model, device="cpu", batch_size=4)
    from_text = scorer.score_pixels(TEXT_PROMPT, pixels, ["overall"])["overall"]
    count = pixels.shape[0]
    prompt_ids = torch.tensor([_hugging_face_row(TEXT_PROMPT)] * count)
    condition_ids = torch.tensor([_hugging_face_row(DIMENSION_CONDITIONS["overall"])] * count)
    with torch.no_grad():
        expected = mps_official_model.score_tokens(prompt_ids, condition_ids, pixels, threshold=0.3)
        zero_padded = mps_official_model.score_tokens(
            torch.tensor([_hugging_face_row(TEXT_PROMPT, pad=0)] * count),
            torch.tensor([_hugging_face_row(DIMENSION_CONDITIONS["overall"], pad=0)] * count),
            pixels,
            threshold=0.3,
        )
    torch.testing.assert_close(from_text, expected, atol=1e-5, rtol=0)
    assert (from_text - zero_padded).abs().max() > 1e-3  # the padding really changes the published model's scores

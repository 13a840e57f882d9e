"""The published model's numbers, reproduced from the tiny checkpoint in the authors' format."""

from __future__ import annotations

import pytest
import torch

from training.mps import MPSModel, condition_keep_mask, load_checkpoint, save_checkpoint

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

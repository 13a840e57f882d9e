"""Behaviour of MPSModel itself, including the fixes over the reference implementation."""

from __future__ import annotations

import pytest
import torch

from training.mps import MPSModel, condition_keep_mask, tiny_config
from training.mps.config import DIMENSION_CONDITIONS, DIMENSIONS
from training.mps.cross import rotary_angles


def _score(model: MPSModel, prompt_ids, condition_ids, pixel_values, **options) -> torch.Tensor:
    with torch.no_grad():
        return model.score_tokens(prompt_ids, condition_ids, pixel_values, **options)


def test_score_does_not_depend_on_the_other_images_in_the_batch(mps_official_model, mps_rows):
    prompt_ids, condition_ids, pixel_values = mps_rows
    together = _score(mps_official_model, prompt_ids, condition_ids, pixel_values)
    alone = torch.cat([_score(mps_official_model, *(rows[i : i + 1] for rows in mps_rows)) for i in range(6)])
    reordered = _score(mps_official_model, prompt_ids.flip(0), condition_ids.flip(0), pixel_values.flip(0))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(together, reordered.flip(0), atol=1e-5, rtol=0)


def test_reference_batch_max_normalisation_does_depend_on_the_batch(mps_official_model, mps_rows):
    # The bug the per-sample mask fixes: at 0.3, pair 1's larger peak similarity shrinks image 0's
    # kept prompt tokens from 37 to 14 when they share a batch.
    prompt_ids, condition_ids, pixel_values = mps_rows
    batch = _score(mps_official_model, prompt_ids, condition_ids, pixel_values, mask_normalization="batch")
    first = (prompt_ids[:1], condition_ids[:1], pixel_values[:1])
    alone = _score(mps_official_model, *first, mask_normalization="batch")
    assert abs(batch[0].item() - alone.item()) > 1e-3


def test_no_nan_when_no_token_passes_the_threshold(mps_official_model, mps_rows):
    prompt_ids, condition_ids, pixel_values = mps_rows
    for threshold in (1.0, 5.0):
        scores = _score(mps_official_model, prompt_ids, condition_ids, pixel_values, threshold=threshold)
        assert torch.isfinite(scores).all(), threshold


def test_mask_always_keeps_the_best_matching_token():
    prompt = torch.tensor([[[1.0, 0.0], [0.5, 0.0], [0.2, 0.0]]])  # [1, 3, 2]
    condition = torch.tensor([[[-1.0, 0.0]]])  # similarities -1, -0.5, -0.2: all negative
    # like the reference, dividing by a negative maximum keeps every token at a low threshold
    assert condition_keep_mask(prompt, condition, threshold=0.3).tolist() == [[True, True, True]]
    assert condition_keep_mask(prompt, condition, threshold=10.0).tolist() == [[False, False, True]]
    assert condition_keep_mask(prompt, -condition, threshold=2.0).tolist() == [[True, False, False]]
    zero = condition_keep_mask(torch.zeros(1, 3, 2), torch.zeros(1, 1, 2), threshold=0.3)
    assert zero.tolist() == [[True, True, True]]  # all tie at the maximum, no division by zero


def test_mask_is_per_sample_and_thresholded_on_the_normalised_similarity():
    prompt = torch.tensor([[[1.0], [0.2], [0.5]], [[10.0], [1.0], [4.0]]])  # [2, 3, 1]
    condition = torch.ones(2, 1, 1)
    assert condition_keep_mask(prompt, condition, 0.3).tolist() == [[True, False, True], [True, False, True]]
    # with one maximum for the batch (10), sample 0 keeps only its best token
    batch_max = condition_keep_mask(prompt, condition, 0.3, "batch")
    assert batch_max.tolist() == [[True, False, False], [True, False, True]]
    with pytest.raises(ValueError, match="sample"):
        condition_keep_mask(prompt, condition, 0.3, "global")


def test_text_tower_runs_once_per_distinct_text(mps_official_model, mps_rows, monkeypatch):
    prompt_ids, condition_ids, pixel_values = mps_rows
    seen_rows = []
    original = mps_official_model.encode_text_tokens

    def counting(token_ids):
        seen_rows.append(token_ids.shape[0])
        return original(token_ids)

    monkeypatch.setattr(mps_official_model, "encode_text_tokens", counting)
    _score(mps_official_model, prompt_ids, condition_ids, pixel_values)
    assert seen_rows == [6]  # 3 distinct prompts + 3 distinct conditions, not 12 rows


def test_image_tokens_skip_the_post_layernorm(mps_official_model, mps_inputs):
    pixels = mps_inputs["pixel_values"][:2]
    visual = mps_official_model.backbone.visual
    with torch.no_grad():
        tokens = mps_official_model.encode_image_tokens(pixels)  # [2, 50, 128]
        pooled_with_ln = visual(pixels)  # open_clip's own path: ln_post, then projection
    assert tokens.shape == (2, 50, 128)
    assert not torch.allclose(tokens[:, 0], pooled_with_ln, atol=1e-3)
    with torch.no_grad():
        redone = visual.ln_post(tokens[:, 0] @ torch.linalg.pinv(visual.proj))
    torch.testing.assert_close(redone @ visual.proj, pooled_with_ln, atol=1e-3, rtol=1e-3)


def test_rotary_angles_follow_the_reference_formula():
    angles = rotary_angles(3, 4, torch.device("cpu"))
    inv_freq = 1.0 / 10000 ** (torch.tensor([0.0, 2.0]) / 4)
    expected = torch.cat([torch.outer(torch.arange(3.0), inv_freq)] * 2, dim=-1)
    torch.testing.assert_close(angles, expected)


def test_mismatched_batch_sizes_are_refused(mps_tiny_model, mps_rows):
    prompt_ids, condition_ids, pixel_values = mps_rows
    with pytest.raises(ValueError, match="same batch size"):
        mps_tiny_model.score_tokens(prompt_ids[:2], condition_ids[:2], pixel_values[:3])


def test_tiny_model_is_trainable_end_to_end(mps_rows):
    torch.manual_seed(1)
    model = MPSModel(tiny_config())
    prompt_ids, condition_ids, pixel_values = (tensor[:2] for tensor in mps_rows)
    scores = model.score_tokens(prompt_ids, condition_ids, pixel_values, threshold=0.01)
    torch.log_softmax(scores, dim=0)[0].neg().backward()
    assert model.cross.layers[0].cross_attn.to_q.weight.grad.abs().sum() > 0
    assert model.backbone.visual.conv1.weight.grad.abs().sum() > 0


def test_dimensions_are_defined_once_with_the_published_conditions():
    assert DIMENSIONS == ("aesthetics", "detail", "alignment", "overall")
    assert set(DIMENSION_CONDITIONS) == set(DIMENSIONS)
    assert DIMENSION_CONDITIONS["alignment"] == "quantity, attributes, position, number, location"
    assert DIMENSION_CONDITIONS["overall"].endswith("location, word, things.")

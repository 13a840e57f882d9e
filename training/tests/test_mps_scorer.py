"""MPSScorer and score_images: shared work across dimensions, plain-data results."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from training.mps import (
    DIMENSIONS,
    MPSScorer,
    format_scores_table,
    preference_matrix,
    preprocess_images,
    save_checkpoint,
    score_images,
    tokenize,
)
from training.mps.config import HF_PAD_ID, dimension_condition

PROMPT = "two dogs"
# Long enough that the four conditions keep different prompt tokens of the fixture's random model (with
# <|endoftext|> padding, a short prompt is mostly padding, which every condition keeps).
LONG_PROMPT = (
    "a detailed portrait of an old fisherman with weathered hands, soft golden light, shallow depth of field, "
    "highly detailed texture, in the style of rembrandt, dramatic ambiance"
)


@pytest.fixture()
def mps_image_files(tmp_path):
    generator = torch.Generator().manual_seed(3)
    paths = []
    for index, size in enumerate([(256, 256), (320, 240), (200, 300), (224, 224), (400, 256)]):
        array = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8).numpy()
        path = tmp_path / f"img_{index}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


@pytest.fixture()
def mps_scorer(mps_official_model):
    # The fixture is in the published format (trained on "overall" only); these tests are about the
    # mechanics of scoring every dimension, so they ask for untrained ones explicitly.
    return MPSScorer(mps_official_model, device="cpu", batch_size=2, allow_untrained_dimensions=True)


def test_four_dimensions_at_once_equal_four_separate_calls(mps_scorer, mps_image_files):
    together = mps_scorer.score(LONG_PROMPT, mps_image_files, DIMENSIONS)
    for dimension in DIMENSIONS:
        alone = mps_scorer.score(LONG_PROMPT, mps_image_files, [dimension])
        assert together["scores"][dimension] == pytest.approx(alone["scores"][dimension], abs=1e-5)
    assert together["dimensions"] == list(DIMENSIONS)
    assert len({tuple(together["scores"][d]) for d in DIMENSIONS}) >= 3  # the conditions really differ


def test_scorer_agrees_with_score_tokens(mps_scorer, mps_official_model, mps_image_files):
    result = mps_scorer.score(PROMPT, mps_image_files, ["detail", "overall"])
    pixels = preprocess_images(mps_image_files, 224)
    count = len(mps_image_files)
    for dimension in ("detail", "overall"):
        with torch.no_grad():
            prompt_ids = tokenize(PROMPT, pad_id=HF_PAD_ID).expand(count, -1)
            condition_ids = tokenize(dimension_condition(dimension), pad_id=HF_PAD_ID).expand(count, -1)
            direct = mps_official_model.score_tokens(prompt_ids, condition_ids, pixels)
        assert result["scores"][dimension] == pytest.approx(direct.tolist(), abs=1e-5)


def _record_batch_sizes(monkeypatch, model, method: str) -> list[int]:
    """Wrap ``model.<method>`` so each call records the batch size of its first argument."""
    sizes: list[int] = []
    original = getattr(model, method)

    def recording(first, *rest):
        sizes.append(len(first))
        return original(first, *rest)

    monkeypatch.setattr(model, method, recording)
    return sizes


def test_each_tower_runs_once_per_image_and_per_distinct_text(mps_scorer, mps_image_files, monkeypatch):
    model = mps_scorer.model
    text_rows = _record_batch_sizes(monkeypatch, model, "encode_text_tokens")
    image_rows = _record_batch_sizes(monkeypatch, model, "encode_image_tokens")
    cross_rows = _record_batch_sizes(monkeypatch, model, "score_features")
    mps_scorer.score(PROMPT, mps_image_files, DIMENSIONS)
    assert text_rows == [5]  # the prompt and four conditions, once
    assert image_rows == [2, 2, 1]  # five images, batch size 2, each once
    assert sum(cross_rows) == 5 * 4  # the cross model is the only per-dimension work


def test_result_is_plain_json_serialisable_data_with_preferences(mps_scorer, mps_image_files):
    result = mps_scorer.score(PROMPT, mps_image_files[:3], ["aesthetics", "overall", "aesthetics"])
    assert json.loads(json.dumps(result)) == result
    assert result["images"] == ["img_0.png", "img_1.png", "img_2.png"]
    assert result["dimensions"] == ["aesthetics", "overall"]
    scores, matrix = result["scores"]["overall"], result["preferences"]["overall"]
    pair = torch.softmax(torch.tensor([scores[0], scores[1]]), dim=0)
    assert matrix[0][1] == pytest.approx(pair[0].item(), abs=1e-6)
    for i in range(3):
        assert matrix[i][i] == 0.5
        for j in range(3):
            assert matrix[i][j] + matrix[j][i] == pytest.approx(1.0)


def test_batch_size_does_not_change_scores(mps_official_model, mps_image_files):
    one = MPSScorer(mps_official_model, device="cpu", batch_size=1, allow_untrained_dimensions=True)
    many = MPSScorer(mps_official_model, device="cpu", batch_size=8, allow_untrained_dimensions=True)
    one, many = (scorer.score(PROMPT, mps_image_files, DIMENSIONS) for scorer in (one, many))
    for dimension in DIMENSIONS:
        assert one["scores"][dimension] == pytest.approx(many["scores"][dimension], abs=1e-5)


def test_in_memory_images_are_accepted(mps_scorer, mps_image_files):
    from_files = mps_scorer.score(PROMPT, mps_image_files[:2])
    images = [Image.open(path) for path in mps_image_files[:2]]
    in_memory = mps_scorer.score(PROMPT, [image.copy() for image in images])
    assert in_memory["scores"]["overall"] == pytest.approx(from_files["scores"]["overall"], abs=1e-6)
    assert in_memory["images"] == ["image_0", "image_1"]


def test_score_images_is_one_call_from_a_checkpoint_path(mps_official_model, mps_image_files, tmp_path):
    save_checkpoint(mps_official_model, tmp_path / "ckpt")
    paths = [str(path) for path in mps_image_files[:2]]
    with pytest.raises(ValueError, match="trained on overall only, not on alignment"):
        score_images(tmp_path / "ckpt", PROMPT, paths, ["alignment"], device="cpu")
    result = score_images(
        tmp_path / "ckpt", PROMPT, paths, ["alignment"], device="cpu", allow_untrained_dimensions=True
    )
    expected = MPSScorer(mps_official_model, device="cpu", allow_untrained_dimensions=True).score(
        PROMPT, mps_image_files[:2], ["alignment"]
    )
    assert result["scores"]["alignment"] == pytest.approx(expected["scores"]["alignment"], abs=1e-5)
    table = format_scores_table(result)
    lines = table.splitlines()
    assert lines[0].split() == ["image", "alignment"]
    assert lines[2].split() == ["img_0.png", f"{result['scores']['alignment'][0]:.4f}"]
    assert len(lines) == 4


def test_bad_requests_are_refused_with_clear_errors(
    mps_official_model,
    mps_scorer,
    mps_image_files,
    tmp_path,
):
    with pytest.raises(ValueError, match="unknown dimension 'beauty'"):
        mps_scorer.score(PROMPT, mps_image_files, ["beauty"])
    with pytest.raises(ValueError, match="at least one image"):
        mps_scorer.score(PROMPT, [])
    with pytest.raises(ValueError, match="fp32 on CPU"):
        MPSScorer(mps_official_model, device="cpu", precision="bf16")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match="cannot read image"):
        mps_scorer.score(PROMPT, [not_an_image])


def test_preference_matrix_is_stable_for_large_score_gaps():
    matrix = preference_matrix([1000.0, -1000.0])
    assert matrix[0][1] == 1.0 and matrix[1][0] == 0.0
    assert preference_matrix([0.0, math.log(3)])[1][0] == pytest.approx(0.75)

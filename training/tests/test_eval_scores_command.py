"""`evaluate_scores`: the protocols applied to score files, on small files written here and the
shared ImageReward sample."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

IMAGEREWARD_SAMPLE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "imagereward_test_format_sample.json"
)


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _evaluate(capsys, **options) -> dict:
    # As on the command line, so argparse converts the values (call_command's keywords skip `type=`).
    call_command("evaluate_scores", "--json", *(f"--{key.replace('_', '-')}={value}" for key, value in options.items()))
    return json.loads(capsys.readouterr().out)


def test_imagereward_sample_with_made_up_scores(tmp_path, capsys):
    items = json.loads(IMAGEREWARD_SAMPLE.read_text())
    # Rankings: [1,2,5,3], [1,2,3,4], [1,2,3,4], [1,3,5,4], [1,2,1,4,3,4]: 4 x 6 pairs, then 15 - 2 rank
    # ties = 13, so 37 pairs. Scores = -rank orders every pair right.
    scores = {path: -rank for item in items for path, rank in zip(item["generations"], item["ranking"], strict=True)}
    perfect = _evaluate(capsys, benchmark="imagereward", annotations=IMAGEREWARD_SAMPLE,
                        scores=_write_json(tmp_path / "perfect.json", scores))  # fmt: skip
    assert (perfect["accuracy"], perfect["pairs"]) == (1.0, 37)
    # Reverse the first prompt (its 6 pairs wrong) and give the last one equal scores (13 pairs wrong).
    first, last = items[0], items[-1]
    scores.update(dict(zip(first["generations"], first["ranking"], strict=True)))
    scores.update(dict.fromkeys(last["generations"], 0.25))
    spoiled = _evaluate(capsys, benchmark="imagereward", annotations=IMAGEREWARD_SAMPLE,
                        scores=_write_json(tmp_path / "spoiled.json", scores))  # fmt: skip
    assert (spoiled["accuracy"], spoiled["pairs"]) == (pytest.approx(18 / 37), 37)


def test_hpdv2_file_is_a_macro_average_over_prompts(tmp_path, capsys):
    annotations = _write_json(
        tmp_path / "test.json",
        [
            {"prompt": "four", "image_path": ["a", "b", "c", "d"], "rank": [0, 1, 2, 3], "raw_annotations": []},
            {"prompt": "two", "image_path": ["e", "f"], "rank": [0, 1], "raw_annotations": []},
        ],
    )
    scores = _write_json(tmp_path / "scores.json", {"a": 4, "b": 3, "c": 2, "d": 1, "e": 0, "f": 1})
    hpd = _evaluate(capsys, benchmark="hpdv2", annotations=annotations, scores=scores)
    assert (hpd["accuracy"], hpd["pairs"], hpd["prompts"]) == (0.5, 7, 2)  # (1 + 0) / 2; micro would be 6/7


def _pickapic(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_pickapic_uids_and_tie_aware_accuracy(tmp_path, capsys):
    annotations = _pickapic(
        tmp_path / "test.parquet",
        {
            "caption": ["a cat", "a dog", "a fox"],
            "image_0_uid": ["u1", "u3", "u5"],
            "image_1_uid": ["u2", "u4", "u6"],
            "label_0": [1.0, 0.0, 0.5],
            "label_1": [0.0, 1.0, 0.5],
        },
    )
    # u1 > u2 right (gap tanh(1)); u3 > u4 wrong (gap tanh(0.05)); the tie (gap 0) is skipped.
    scores = _write_json(tmp_path / "s.json", {"u1": 2, "u2": 0, "u3": 0.1, "u4": 0, "u5": 1, "u6": 1})
    plain = _evaluate(capsys, benchmark="pickapic", annotations=annotations, scores=scores)
    assert (plain["accuracy"], plain["pairs"], plain["tie_aware_accuracy"]) == (0.5, 2, None)
    # Threshold 0.3: pair 2 predicted a tie (half), pair 3 a tie on both sides (full): (1 + 0.5 + 1) / 3.
    tie_aware = _evaluate(capsys, benchmark="pickapic", annotations=annotations, scores=scores, tie_threshold=0.3)
    assert (tie_aware["tie_aware_accuracy"], tie_aware["tie_aware_pairs"]) == (pytest.approx(2.5 / 3), 3)
    assert tie_aware["tie_threshold_source"] == "given"


def test_pickapic_image_bytes_are_keyed_by_row_number(tmp_path, capsys):
    annotations = _pickapic(
        tmp_path / "bytes.parquet",
        {"caption": ["x", "y"], "jpg_0": [b"\x01", b"\x02"], "jpg_1": [b"\x03", b"\x04"],
         "label_0": [0.0, 1.0], "label_1": [1.0, 0.0]},
    )  # fmt: skip
    scores = _write_json(tmp_path / "s.json", {"0_0": 0.0, "0_1": 1.0, "1_0": 0.0, "1_1": 1.0})
    result = _evaluate(capsys, benchmark="pickapic", annotations=annotations, scores=scores)
    assert (result["accuracy"], result["pairs"]) == (0.5, 2)


def _export_record(pair_id: int, split: str, first: str, second: str, overall: list, detail: list) -> dict:
    labels = {"aesthetics": [0.5, 0.5], "detail": detail, "alignment": [0.5, 0.5], "overall": overall}
    return {"pair_id": pair_id, "split": split, "prompt_id": pair_id, "prompt": f"prompt {pair_id}",
            "category": "animals", "image_first": first, "image_second": second, "image_first_sha256": "0" * 64,
            "image_second_sha256": "1" * 64, "generator_first": "g1", "generator_second": "g2", "labels": labels,
            "annotator_count": 3, "agreement": 1.0}  # fmt: skip


@pytest.fixture
def export_file(tmp_path) -> Path:
    records = [
        _export_record(1, "train", "img/1a.png", "img/1b.png", [1, 0], [1, 0]),
        _export_record(2, "val", "img/2a.png", "img/2b.png", [0.5, 0.5], [1, 0]),  # gap tanh(0.05)
        _export_record(3, "val", "img/3a.png", "img/3b.png", [1, 0], [1, 0]),  # gap tanh(1)
        _export_record(4, "test", "img/4a.png", "img/4b.png", [1, 0], [0, 1]),
        _export_record(5, "test", "img/5a.png", "img/5b.png", [0.5, 0.5], [1, 0]),
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


EXPORT_SCORES = {
    "img/1a.png": 0, "img/1b.png": 5,
    "img/2a.png": 0.1, "img/2b.png": 0, "img/3a.png": 2, "img/3b.png": 0,
    "img/4a.png": 1, "img/4b.png": 0, "img/5a.png": 0.02, "img/5b.png": 0,
}  # fmt: skip


def test_export_pairs_use_the_test_split_the_dimension_and_a_threshold_tuned_on_val(tmp_path, export_file, capsys):
    scores = _write_json(tmp_path / "s.json", EXPORT_SCORES)
    overall = _evaluate(capsys, benchmark="pairs", annotations=export_file, scores=scores)
    # Test split only: pair 4 right, pair 5 a tie label (skipped by the plain accuracy).
    assert (overall["split"], overall["accuracy"], overall["pairs"]) == ("test", 1.0, 1)
    # On val the best threshold sits between tanh(0.05) and tanh(1): pair 2 a predicted tie, pair 3 not.
    assert overall["tie_threshold"] == pytest.approx((0.04995837495788 + 0.76159415595576) / 2)
    assert overall["tie_threshold_source"] == "tuned on 2 validation pairs"
    assert overall["tie_aware_accuracy"] == 1.0  # pair 4 right, pair 5's gap tanh(0.01) predicted a tie
    detail = _evaluate(capsys, benchmark="pairs", annotations=export_file, scores=scores, dimension="detail")
    assert (detail["accuracy"], detail["pairs"]) == (0.5, 2)  # pair 4 wrong, pair 5 right
    everything = _evaluate(capsys, benchmark="pairs", annotations=export_file.parent, scores=scores, split="all")
    assert (everything["accuracy"], everything["pairs"], everything["tie_threshold"]) == (pytest.approx(2 / 3), 3, None)


def test_table_output_names_the_dimension_and_threshold(tmp_path, export_file, capsys):
    scores = _write_json(tmp_path / "s.json", EXPORT_SCORES)
    call_command("evaluate_scores", benchmark="pairs", annotations=str(export_file), scores=str(scores))
    out = capsys.readouterr().out
    assert "overall" in out and "1.0000" in out and "tie threshold: tuned on 2 validation pairs" in out


def test_bad_input_is_a_clear_command_error(tmp_path, export_file):
    scores = _write_json(tmp_path / "s.json", {"img/4a.png": 1})
    with pytest.raises(CommandError, match=r"3 images have no score: img/4b.png, img/5a.png, img/5b.png"):
        call_command("evaluate_scores", benchmark="pairs", annotations=str(export_file), scores=str(scores))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "x", "prompt": "p", "generations": ["a", "b"], "ranking": [1]}]')
    with pytest.raises(CommandError, match=r"broken.json: item 1 \(id x\): 1 ranks for 2 images"):
        call_command("evaluate_scores", benchmark="imagereward", annotations=str(broken), scores=str(scores))
    with pytest.raises(CommandError, match="not a Parquet file"):
        call_command("evaluate_scores", benchmark="pickapic", annotations=str(broken), scores=str(scores))
    with pytest.raises(CommandError, match=r"nope.json"):
        call_command("evaluate_scores", benchmark="hpdv2", annotations=str(tmp_path / "nope.json"), scores=str(scores))
    bad_scores = _write_json(tmp_path / "bad.json", {"img/4a.png": "high"})
    with pytest.raises(CommandError, match=r"bad.json: the score of 'img/4a.png' is 'high'"):
        call_command("evaluate_scores", benchmark="pairs", annotations=str(export_file), scores=str(bad_scores))
    test_only = tmp_path / "test_only.jsonl"
    test_only.write_text(export_file.read_text().splitlines()[-1] + "\n")
    with pytest.raises(CommandError, match="no pairs to evaluate in split 'train'"):
        call_command(
            "evaluate_scores", benchmark="pairs", annotations=str(test_only), scores=str(scores), split="train"
        )
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("evaluate_scores", benchmark="parti", annotations=str(export_file), scores=str(scores))

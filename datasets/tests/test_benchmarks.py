import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from datasets.models import EvaluationItem, EvaluationSet

pytestmark = pytest.mark.django_db

IMAGEREWARD_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "imagereward_test_format_sample.json"


def _items(name: str) -> dict[str, tuple]:
    return {
        item.external_id: (item.prompt, item.images, item.ranking)
        for item in EvaluationItem.objects.filter(evaluation_set__name=name)
    }


def test_imagereward_sample_with_ties():
    call_command("import_benchmark", "imagereward", IMAGEREWARD_SAMPLE, "--name", "ir", verbosity=0)
    evaluation_set = EvaluationSet.objects.get(name="ir")
    assert (evaluation_set.kind, evaluation_set.item_count, evaluation_set.image_root) == ("imagereward", 5, "")
    items = _items("ir")
    assert items["005658-0040"][2] == [1, 2, 5, 3]
    prompt, images, ranking = items["005695-0057"]
    assert ranking == [1, 2, 1, 4, 3, 4]  # two ties, kept as shared ranks
    assert len(images) == 6 and images[0].startswith("part-005695/images/0057/")
    assert prompt == json.loads(IMAGEREWARD_SAMPLE.read_text())[4]["prompt"]


def test_hpdv2_counts_from_zero_and_keeps_ties(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(
        json.dumps(
            [
                {
                    "prompt": "a cat",
                    "image_path": ["a/1.jpg", "b/1.jpg", "c/1.jpg"],
                    "rank": [2, 0, 1],
                    "raw_annotations": [],
                },
                {"prompt": "a dog", "image_path": ["a/2.jpg", "b/2.jpg"], "rank": [0, 0], "raw_annotations": [[0, 1]]},
            ]
        )
    )
    images = tmp_path / "images"
    images.mkdir()
    call_command("import_benchmark", "hpdv2", path, "--images", images, verbosity=0)
    assert EvaluationSet.objects.get(name="hpdv2-test").image_root == str(images)
    assert _items("hpdv2-test") == {
        "0": ("a cat", ["a/1.jpg", "b/1.jpg", "c/1.jpg"], [3, 1, 2]),
        "1": ("a dog", ["a/2.jpg", "b/2.jpg"], [1, 1]),
    }


def test_pickapic_bytes_written_to_images_and_ties(tmp_path):
    jpg = [b"\xff\xd8first", b"\xff\xd8second", b"\xff\xd8third"]
    table = pa.table(
        {
            "caption": ["red car", "blue sky"],
            "jpg_0": pa.array([jpg[0], jpg[2]], pa.binary()),
            "jpg_1": pa.array([jpg[1], jpg[0]], pa.binary()),
            "label_0": [0.0, 0.5],
            "label_1": [1.0, 0.5],
            "ranking_id": ["r-1", "r-2"],
        }
    )
    pq.write_table(table, tmp_path / "pick.parquet")
    images = tmp_path / "images"
    images.mkdir()
    call_command("import_benchmark", "pickapic", tmp_path / "pick.parquet", "--images", images, verbosity=0)
    names = [f"{hashlib.sha256(data).hexdigest()}.jpg" for data in jpg]
    assert _items("pickapic-pick") == {
        "r-1": ("red car", [names[0], names[1]], [2, 1]),
        "r-2": ("blue sky", [names[2], names[0]], [1, 1]),
    }
    assert sorted(p.name for p in images.iterdir()) == sorted(names)
    assert (images / names[2]).read_bytes() == jpg[2]


def test_pickapic_uids_without_images(tmp_path):
    table = pa.table(
        {"caption": ["x"], "image_0_uid": ["u0"], "image_1_uid": ["u1"], "label_0": [1.0], "label_1": [0.0]}
    )
    pq.write_table(table, tmp_path / "uids.parquet")
    call_command("import_benchmark", "pickapic", tmp_path / "uids.parquet", "--name", "pick-uids", verbosity=0)
    assert _items("pick-uids") == {"0": ("x", ["u0", "u1"], [1, 2])}
    assert EvaluationSet.objects.get(name="pick-uids").image_root == ""


def _refused(*args, match: str) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("import_benchmark", *args, verbosity=0)
    assert not EvaluationSet.objects.exists() and not EvaluationItem.objects.exists()


def test_malformed_files_are_refused_and_change_nothing(tmp_path):
    good = {"id": "a", "prompt": "p", "generations": ["1.png", "2.png"], "ranking": [1, 2]}
    bad = {"id": "b", "prompt": "p", "generations": ["1.png", "2.png", "3.png"], "ranking": [1, 2]}
    (tmp_path / "ir.json").write_text(json.dumps([good, bad]))
    _refused("imagereward", tmp_path / "ir.json", match=r"item 2 \(id b\): 2 ranks for 3 images; nothing was imported")
    (tmp_path / "dup.json").write_text(json.dumps([good, good]))
    _refused("imagereward", tmp_path / "dup.json", match="id a appears twice")
    (tmp_path / "obj.json").write_text(json.dumps({"prompt": "p"}))
    _refused("hpdv2", tmp_path / "obj.json", match="a JSON list of items, not dict")
    (tmp_path / "broken.json").write_text("[{")
    _refused("imagereward", tmp_path / "broken.json", match="is not valid ImageReward JSON")

    pq.write_table(pa.table({"caption": ["x"], "label_0": [1.0], "label_1": [0.0]}), tmp_path / "noimg.parquet")
    _refused("pickapic", tmp_path / "noimg.parquet", match="needs the columns jpg_0/jpg_1 or image_0_uid/image_1_uid")
    table = pa.table(
        {
            "caption": ["x", "y"],
            "image_0_uid": ["a", "b"],
            "image_1_uid": ["c", "d"],
            "label_0": [1.0, 0.3],
            "label_1": [0.0, 0.7],
        }
    )
    pq.write_table(table, tmp_path / "labels.parquet")
    _refused("pickapic", tmp_path / "labels.parquet", match="row 2: label_0/label_1 are 0.3/0.7")
    _refused("pickapic", tmp_path / "ir.json", match="is not a Parquet file")
    _refused("pickapic", tmp_path / "missing.parquet", match="no such file")


def test_existing_name_refused(tmp_path):
    call_command("import_benchmark", "imagereward", IMAGEREWARD_SAMPLE, "--name", "ir", verbosity=0)
    with pytest.raises(CommandError, match="'ir' already exists"):
        call_command("import_benchmark", "hpdv2", IMAGEREWARD_SAMPLE, "--name", "ir", verbosity=0)
    assert EvaluationSet.objects.get().kind == "imagereward" and EvaluationItem.objects.count() == 5

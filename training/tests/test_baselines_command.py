"""`evaluate_baselines`: tiny baselines and the tiny MPS fixture on a tiny ImageReward-format set and an MHP
export, checked against the protocols applied to each scorer's own scores."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import save_file

from mhp.jobs import JobStatus
from training.baselines.aesthetic import AestheticMLP
from training.baselines.registry import load_method
from training.evaluation.protocols import LabelledPair, RankedItem, imagereward_accuracy, pair_accuracy
from training.models import EvaluationRun
from training.mps import DIMENSIONS, import_open_clip, tiny_config
from training.tests.benchmark_sets import IMAGEREWARD_ITEMS, placeholders, tiny_imagereward_set
from training.tests.test_baselines import _transformers_config, to_transformers_layout


@pytest.fixture(autouse=True)
def _weights_under_a_model_root(settings, tmp_path_factory):
    """Evaluation opens weights only under ARTIFACTS_ROOT or MODEL_ROOTS: the tests' all lie in pytest's temp folder."""
    settings.MODEL_ROOTS = [tmp_path_factory.getbasetemp()]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, mps_official_path) -> dict[str, Path]:
    return tiny_weights(tmp_path_factory.mktemp("weights"), mps_official_path)


def tiny_weights(root: Path, mps_official_path: Path) -> dict[str, Path]:
    """Every method's tiny weights in its published layout, plus the tiny open_clip model JSON."""
    clip_config = copy.deepcopy(tiny_config().clip)
    (root / "tiny.json").write_text(json.dumps(clip_config))
    paths = {"arch": root / "tiny.json"}
    for seed, name in enumerate(("clip", "hpsv2", "pickscore", "aesthetic-clip"), start=10):
        torch.manual_seed(seed)
        state = {
            key: value.contiguous() for key, value in import_open_clip().model.CLIP(**clip_config).state_dict().items()
        }
        if name == "clip":  # an open_clip Hub directory
            (root / "clip").mkdir()
            save_file(state, str(root / "clip" / "open_clip_model.safetensors"))
            (root / "clip" / "open_clip_config.json").write_text(json.dumps({"model_cfg": clip_config}))
            paths["clip"] = root / "clip"
        elif name == "hpsv2":
            torch.save({"state_dict": {"module." + key: value for key, value in state.items()}}, root / "hps.pt")
            paths["hpsv2"] = root / "hps.pt"
        elif name == "pickscore":
            (root / "pickscore").mkdir()
            save_file(to_transformers_layout(state), str(root / "pickscore" / "model.safetensors"))
            (root / "pickscore" / "config.json").write_text(json.dumps(_transformers_config(heads=2)))
            paths["pickscore"] = root / "pickscore"
        else:
            save_file(state, str(root / "aesthetic-clip.safetensors"))
            paths["aesthetic-clip"] = root / "aesthetic-clip.safetensors"
    torch.manual_seed(20)
    torch.save(AestheticMLP((128, 1024, 128, 64, 16, 1)).state_dict(), root / "aesthetic.pth")
    paths["aesthetic"] = root / "aesthetic.pth"
    paths["mps"] = root / "mps"
    call_command("import_mps_checkpoint", str(mps_official_path), str(paths["mps"]), trained_dimension=list(DIMENSIONS))
    return paths


def _arguments(weights: dict[str, Path], methods=("clip", "aesthetic", "hpsv2", "pickscore", "mps")) -> list[str]:
    return [
        *(f"--method={name}={weights[name]}" for name in methods),
        f"--arch={weights['arch']}", f"--aesthetic-clip={weights['aesthetic-clip']}",
        f"--aesthetic-arch={weights['arch']}", "--device=cpu", "--verbosity=0",
    ]  # fmt: skip


@pytest.fixture
def imagereward_set(tmp_path):
    return tiny_imagereward_set(tmp_path / "images")


def _export(tmp_path: Path) -> tuple[Path, Path]:
    records = []
    for number, split in enumerate(["val", "val", "test", "test", "test"], start=1):
        labels = {"overall": [1.0, 0.0], "aesthetics": [0.0, 1.0], "detail": [1.0, 0.0], "alignment": [0.5, 0.5]}
        records.append({"pair_id": number, "split": split, "prompt": f"a small house number {number}",
                        "image_first": f"images/{number}a.png", "image_second": f"images/{number}b.png",
                        "labels": labels})  # fmt: skip
    export = tmp_path / "export"
    export.mkdir()
    (export / "pairs.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    media = tmp_path / "media"
    placeholders(media, [f"images/{n}{side}.png" for n in range(1, 6) for side in "ab"], label="baseline")
    return export, media


def _scores(scorer, root: Path, groups: dict[str, list[str]], dimension: str) -> dict[str, float]:
    scores = {}
    for prompt, keys in groups.items():
        if hasattr(scorer, "score_dimensions"):
            values = scorer.score_dimensions(prompt, [root / key for key in keys], [dimension])[dimension]
        else:
            values = scorer.score(prompt, [root / key for key in keys])
        scores.update(zip(keys, values, strict=True))
    return scores


def _loaded(weights, name):
    return load_method(name, weights[name], architecture=str(weights["arch"]), aesthetic_clip=weights["aesthetic-clip"],
                       aesthetic_architecture=str(weights["arch"]), device="cpu")  # fmt: skip


@pytest.mark.django_db
def test_every_method_on_an_imagereward_set_and_an_export(weights, imagereward_set, tmp_path, capsys):
    export, media = _export(tmp_path)
    call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--benchmark=pairs:{export}", f"--images={media}",
                 "--json", *_arguments(weights))  # fmt: skip
    results = json.loads(capsys.readouterr().out)["results"]
    assert [(r["method"], r["benchmark"]) for r in results] == [
        (method, benchmark) for method in ("clip", "aesthetic", "hpsv2", "pickscore", "mps")
        for benchmark in ("ir-tiny", f"pairs:{export}")
    ]  # fmt: skip
    items = [RankedItem(item["prompt"], item["generations"], item["ranking"]) for item in IMAGEREWARD_ITEMS]
    ir_groups = {item["prompt"]: item["generations"] for item in IMAGEREWARD_ITEMS}
    test_pairs = {n: (f"images/{n}a.png", f"images/{n}b.png", f"a small house number {n}") for n in (3, 4, 5)}
    pair_groups = {prompt: [a, b] for a, b, prompt in test_pairs.values()}
    labels = {"overall": [1.0, 0.0], "aesthetics": [0.0, 1.0], "detail": [1.0, 0.0], "alignment": [0.5, 0.5]}
    for result in results:
        scorer = _loaded(weights, result["method"])
        if result["benchmark"] == "ir-tiny":
            assert list(result["dimensions"]) == ["overall"] and (result["prompts"], result["images"]) == (2, 5)
            root = Path(imagereward_set.image_root)
            expected = imagereward_accuracy(items, _scores(scorer, root, ir_groups, "overall"))
            assert result["dimensions"]["overall"]["accuracy"] == pytest.approx(expected.accuracy)
            assert result["dimensions"]["overall"]["pairs"] == expected.pairs == 3
            continue
        assert list(result["dimensions"]) == ["aesthetics", "detail", "alignment", "overall"]
        assert (result["prompts"], result["images"]) == (5, 10)  # val pairs are scored to tune the threshold
        for dimension, label in labels.items():
            pairs = [LabelledPair(a, b, label, prompt) for a, b, prompt in test_pairs.values()]
            expected = pair_accuracy(pairs, _scores(scorer, media, pair_groups, dimension))
            metrics = result["dimensions"][dimension]
            assert (metrics["accuracy"], metrics["pairs"]) == (pytest.approx(expected.accuracy), expected.pairs)
        if result["method"] != "mps":  # a baseline's scores are the same for every dimension
            assert result["dimensions"]["overall"]["accuracy"] == result["dimensions"]["detail"]["accuracy"]
            assert result["dimensions"]["overall"]["accuracy"] == pytest.approx(
                1 - result["dimensions"]["aesthetics"]["accuracy"]
            )
    runs = EvaluationRun.objects.order_by("id")
    assert [(run.method, run.status, run.progress) for run in runs] == [
        (result["method"], JobStatus.SUCCEEDED, 1.0) for result in results
    ]
    assert runs[0].evaluation_set == imagereward_set and runs[0].checkpoint_path == str(weights["clip"])
    assert (
        runs[1].config["benchmark"] == f"pairs:{export}" and runs[1].metrics["dimensions"] == results[1]["dimensions"]
    )


@pytest.mark.django_db
def test_the_printed_tables_are_methods_by_benchmarks_and_by_dimensions(weights, imagereward_set, tmp_path, capsys):
    export, media = _export(tmp_path)
    call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--benchmark=pairs:{export}", f"--images={media}",
                 *_arguments(weights, methods=("clip", "mps")))  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Accuracy by benchmark (overall)"
    assert lines[1].split() == ["method", "ir-tiny", f"pairs:{export}"]
    runs = {(run.method, run.config["benchmark"]): run.metrics["dimensions"] for run in EvaluationRun.objects.all()}
    clip_row = lines[3].split()
    assert clip_row[:2] == ["CLIP", "score"]
    assert clip_row[2] == f"{100 * runs[('clip', 'ir-tiny')]['overall']['accuracy']:.1f}"
    assert lines[4].split()[0] == "MPS"
    start = lines.index(f"MHP accuracy by dimension: pairs:{export}")
    assert lines[start + 1].split() == ["method", "aesthetics", "detail", "alignment", "overall"]
    mps_row = lines[start + 4].split()
    mps = runs[("mps", f"pairs:{export}")]
    assert mps_row == [
        "MPS",
        *(f"{100 * mps[d]['accuracy']:.1f}" for d in ("aesthetics", "detail", "alignment", "overall")),
    ]


@pytest.mark.django_db
def test_bad_methods_and_files_are_command_errors(weights, imagereward_set, tmp_path):
    with pytest.raises(CommandError, match="unknown method 'dalle'"):
        call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--method=dalle={tmp_path}")
    with pytest.raises(CommandError, match="--method takes NAME=PATH"):
        call_command("evaluate_baselines", "--benchmark=ir-tiny", "--method=clip")
    with pytest.raises(CommandError, match="clip: nothing at"):
        call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--method=clip={tmp_path / 'none'}")
    pickscore_file = weights["pickscore"] / "model.safetensors"
    with pytest.raises(CommandError, match="HPS v2: the weights do not fit"):  # a PickScore file is no HPS v2 file
        call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--method=hpsv2={pickscore_file}",
                     f"--arch={weights['arch']}", "--verbosity=0")  # fmt: skip
    failed = EvaluationRun.objects.get()  # the model loads in the run, as on a GPU worker: its row says why
    assert (failed.method, failed.status) == (
        "hpsv2",
        JobStatus.FAILED,
    ) and "HPS v2: the weights do not fit" in failed.error
    (Path(imagereward_set.image_root) / "p2" / "a.png").unlink()
    with pytest.raises(CommandError, match="1 images are missing under .*: p2/a.png"):
        call_command("evaluate_baselines", "--benchmark=ir-tiny", *_arguments(weights, methods=("clip",)))
    assert list(EvaluationRun.objects.all()) == [failed]  # refused before any run started


@pytest.mark.django_db
def test_a_method_is_loaded_once_for_all_the_benchmarks(weights, imagereward_set, tmp_path, monkeypatch):
    from training.baselines import registry

    loads = []
    monkeypatch.setattr(registry, "load_method", lambda *args, **kwargs: loads.append(args) or _loaded(weights, "clip"))
    export, media = _export(tmp_path)
    call_command("evaluate_baselines", "--benchmark=ir-tiny", f"--benchmark=pairs:{export}", f"--images={media}",
                 *_arguments(weights, methods=("clip",)))  # fmt: skip
    assert loads == [("clip", str(weights["clip"]))]
    assert [run.status for run in EvaluationRun.objects.all()] == [JobStatus.SUCCEEDED] * 2

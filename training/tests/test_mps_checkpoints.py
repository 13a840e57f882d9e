"""Plain state dicts, safetensors, the project's format and configuration inference."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from training.mps import (
    DIMENSIONS,
    CheckpointError,
    MPSConfig,
    MPSModel,
    build_model,
    convert_checkpoint,
    load_checkpoint,
    save_checkpoint,
    tiny_config,
)
from training.mps.convert import TowerHints, build_config, hints_from_architecture, matching_architecture

TINY_HEADS = {"text_heads": 2, "vision_heads": 2}


def _eval_scores(model: MPSModel, rows) -> list[float]:
    with torch.no_grad():
        return model.score_tokens(*rows, threshold=0.3).tolist()


def _expected_eval(mps_expected) -> list[float]:
    return [score for pair in mps_expected["expected_eval_threshold_0_3"] for score in pair["scores"]]


def _without_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key.removeprefix("model."): value for key, value in state.items()}


@pytest.mark.parametrize("prefixed", [True, False])
@pytest.mark.parametrize("suffix", [".pth", ".bin"])
def test_plain_torch_state_dict_loads(
    mps_reference_state,
    mps_rows,
    mps_expected,
    tmp_path,
    prefixed,
    suffix,
):
    state = mps_reference_state if prefixed else _without_prefix(mps_reference_state)
    path = tmp_path / f"state{suffix}"
    torch.save(state, path)
    model = load_checkpoint(path, **TINY_HEADS)
    assert _eval_scores(model, mps_rows) == pytest.approx(_expected_eval(mps_expected), abs=1e-4)


@pytest.mark.parametrize("prefixed", [True, False])
def test_plain_safetensors_state_dict_loads(mps_reference_state, mps_rows, mps_expected, tmp_path, prefixed):
    state = mps_reference_state if prefixed else _without_prefix(mps_reference_state)
    path = tmp_path / "state.safetensors"
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    model = load_checkpoint(path, **TINY_HEADS)
    assert _eval_scores(model, mps_rows) == pytest.approx(_expected_eval(mps_expected), abs=1e-4)


def test_wrapped_state_dict_loads(mps_reference_state, tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": mps_reference_state}, path)
    assert load_checkpoint(path, **TINY_HEADS).config.cross_layers == 2


def test_bare_state_dict_without_head_counts_is_refused_with_advice(mps_reference_state, tmp_path):
    path = tmp_path / "state.pth"
    torch.save(mps_reference_state, path)
    with pytest.raises(CheckpointError, match="text_heads=, vision_heads="):
        load_checkpoint(path)


def test_state_dict_missing_a_tensor_is_refused(mps_reference_state, tmp_path):
    state = dict(mps_reference_state)
    del state["cross_model.layers.1.1.fn.attn_out.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="attn_out"):
        load_checkpoint(path, **TINY_HEADS)


def test_state_dict_with_unknown_tensors_is_refused(mps_reference_state, tmp_path):
    path = tmp_path / "extra.pth"
    torch.save({**mps_reference_state, "model.surprise.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="surprise"):
        load_checkpoint(path, **TINY_HEADS)


def test_configuration_is_inferred_from_the_published_pickle(mps_official_model):
    config = mps_official_model.config
    assert config.clip["embed_dim"] == 128
    text = {"width": 64, "layers": 2, "heads": 2, "context_length": 77, "vocab_size": 49408, "mlp_ratio": 4.0}
    vision = {"width": 96, "layers": 2, "head_width": 48, "patch_size": 32, "image_size": 224}
    assert text.items() <= config.clip["text_cfg"].items()
    assert vision.items() <= config.clip["vision_cfg"].items()
    assert config.clip["quick_gelu"] is False
    cross = (config.cross_layers, config.cross_heads, config.cross_dim_head, config.cross_ff_mult)
    assert cross == (2, 2, 64, 4)
    # the authors' tokenizer pads with <|endoftext|>; the release was trained on "overall" only
    assert (config.pad_id, config.trained_dimensions) == (49407, ("overall",))


def test_pad_id_and_trained_dimensions_survive_the_project_format(mps_official_path, tmp_path):
    config_path = convert_checkpoint(mps_official_path, tmp_path / "published")
    saved = json.loads(config_path.read_text())["config"]
    assert (saved["pad_id"], saved["trained_dimensions"]) == (49407, ["overall"])
    loaded = load_checkpoint(tmp_path / "published").config
    assert (loaded.pad_id, loaded.trained_dimensions) == (49407, ("overall",))
    assert (tiny_config().pad_id, tiny_config().trained_dimensions) == (49407, DIMENSIONS)  # trained here


def test_project_config_of_version_1_or_without_a_pad_id_is_refused_with_advice(mps_tiny_model, tmp_path):
    config_path = save_checkpoint(mps_tiny_model, tmp_path / "tiny")
    document = json.loads(config_path.read_text())
    old = {**document, "format_version": 1}
    old["config"] = {k: v for k, v in document["config"].items() if k not in ("pad_id", "trained_dimensions")}
    config_path.write_text(json.dumps(old))
    with pytest.raises(CheckpointError, match="format version 1.*re-import the original file"):
        load_checkpoint(tmp_path / "tiny")
    config_path.write_text(json.dumps({**old, "format_version": 2}))
    with pytest.raises(CheckpointError, match="missing pad_id, trained_dimensions"):
        load_checkpoint(tmp_path / "tiny")
    for field, value in (("pad_id", 1), ("trained_dimensions", ["beauty"]), ("trained_dimensions", [])):
        config_path.write_text(json.dumps({**document, "config": {**document["config"], field: value}}))
        with pytest.raises(CheckpointError, match="not a valid MPS config"):
            load_checkpoint(tmp_path / "tiny")


def test_vit_h_14_state_dict_gets_its_head_counts_from_the_named_architecture():
    shapes = {
        "embed_dim": 1024,
        "vocab_size": 49408,
        "text_width": 1024,
        "context_length": 77,
        "text_layers": 24,
        "text_mlp": 4096,
        "vision_width": 1280,
        "patch_size": 14,
        "image_size": 224,
        "vision_layers": 32,
        "vision_mlp": 5120,
        "cross_layers": 4,
        "cross_dim_head": 64,
        "cross_heads": 16,
        "cross_ff_mult": 4,
    }
    assert matching_architecture(shapes) == "ViT-H-14"
    hints = hints_from_architecture("ViT-H-14")
    assert hints == TowerHints(text_heads=16, vision_heads=16, activation="gelu", layer_norm_eps=1e-5)
    config = build_config(shapes, hints, "ViT-H-14")
    assert config.clip["vision_cfg"]["head_width"] == 80 and config.clip["text_cfg"]["heads"] == 16
    assert config.clip == MPSConfig().clip | {
        "vision_cfg": config.clip["vision_cfg"],
        "text_cfg": config.clip["text_cfg"],
    }


def test_caller_hints_override_and_other_activations_map_to_open_clip(mps_reference_state, tmp_path):
    path = tmp_path / "state.pth"
    torch.save(mps_reference_state, path)
    model = load_checkpoint(path, text_heads=4, vision_heads=3, activation="quick_gelu", layer_norm_eps=1e-6)
    clip = model.config.clip
    assert (clip["text_cfg"]["heads"], clip["vision_cfg"]["head_width"], clip["quick_gelu"]) == (4, 32, True)
    assert clip["text_cfg"]["norm_kwargs"] == {"eps": 1e-6}
    assert model.backbone.transformer.resblocks[0].attn.num_heads == 4
    assert model.backbone.ln_final.eps == 1e-6


def test_tiny_open_clip_config_scores_and_round_trips(mps_tiny_model, mps_rows, tmp_path):
    before = _eval_scores(mps_tiny_model, mps_rows)
    assert all(torch.isfinite(torch.tensor(before)))
    config_path = save_checkpoint(mps_tiny_model, tmp_path / "tiny")
    document = json.loads(config_path.read_text())
    assert document["format"] == "mhp-mps" and document["config"] == tiny_config().to_dict()
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["config.json", "model.safetensors"]
    reloaded = load_checkpoint(tmp_path / "tiny")
    assert reloaded.config == mps_tiny_model.config
    assert _eval_scores(reloaded, mps_rows) == pytest.approx(before, abs=1e-6)
    for name, tensor in mps_tiny_model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name


def test_file_pair_form_and_json_path_load(mps_tiny_model, tmp_path):
    config_path = save_checkpoint(mps_tiny_model, tmp_path / "tiny.safetensors")
    assert config_path == tmp_path / "tiny.json"
    assert load_checkpoint(tmp_path / "tiny.safetensors").config == mps_tiny_model.config
    assert load_checkpoint(config_path).config == mps_tiny_model.config


def test_saving_over_an_existing_checkpoint_replaces_it_and_leaves_no_temporaries(
    mps_tiny_model, mps_official_model, tmp_path
):
    save_checkpoint(mps_official_model, tmp_path / "ckpt")
    save_checkpoint(mps_tiny_model, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    assert load_checkpoint(tmp_path / "ckpt").config == mps_tiny_model.config


def test_truncated_project_weights_are_refused(mps_tiny_model, tmp_path):
    save_checkpoint(mps_tiny_model, tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "ckpt")


def test_convert_checkpoint_writes_the_project_format(mps_official_path, mps_rows, mps_expected, tmp_path):
    config_path = convert_checkpoint(mps_official_path, tmp_path / "converted")
    assert config_path == tmp_path / "converted" / "config.json"
    model = load_checkpoint(tmp_path / "converted")
    assert _eval_scores(model, mps_rows) == pytest.approx(_expected_eval(mps_expected), abs=1e-4)


def test_config_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="surprise"):
        MPSConfig.from_dict({**tiny_config().to_dict(), "surprise": 1})


def test_half_precision_state_dict_loads_as_fp32(mps_reference_state, mps_rows, mps_expected, tmp_path):
    path = tmp_path / "half.pth"
    torch.save({key: value.half() for key, value in mps_reference_state.items()}, path)
    model = load_checkpoint(path, **TINY_HEADS)
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}
    assert _eval_scores(model, mps_rows) == pytest.approx(_expected_eval(mps_expected), abs=0.05)


def test_project_config_that_does_not_match_the_weights_is_refused(mps_tiny_model, tmp_path):
    config_path = save_checkpoint(mps_tiny_model, tmp_path / "ckpt")
    document = json.loads(config_path.read_text())
    document["config"]["cross_heads"] = 4
    config_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="size mismatch"):
        load_checkpoint(tmp_path / "ckpt")


def test_loaded_model_has_the_causal_text_mask(mps_official_model):
    mask = mps_official_model.backbone.attn_mask
    assert mask.shape == (77, 77) and not mask.is_meta
    assert mask[0, 1] == float("-inf") and mask[1, 0] == 0 and mask[5, 5] == 0


def test_build_model_takes_backbone_weights_from_a_local_file_only(mps_tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = tmp_path / "open_clip_tiny.pt"
    torch.save(mps_tiny_model.backbone.state_dict(), path)
    model = build_model(tiny_config(), pretrained=path)
    for name, tensor in mps_tiny_model.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor), name
    vit_h = MPSConfig(clip=tiny_config().clip)  # the default architecture/tag, tiny shapes
    with pytest.raises(CheckpointError, match="never downloads"):
        build_model(vit_h, pretrained="laion2b_s32b_b79k", cache_dir=tmp_path / "empty_cache")


def test_state_dict_missing_a_key_projection_is_refused(mps_reference_state, tmp_path):
    state = dict(mps_reference_state)
    del state["model.vision_model.encoder.layers.1.self_attn.k_proj.bias"]
    path = tmp_path / "no_k.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"visual\.transformer\.resblocks\.1\.attn\.in_proj_bias"):
        load_checkpoint(path, **TINY_HEADS)

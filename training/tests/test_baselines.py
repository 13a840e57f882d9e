"""Baselines: tiny random-weight models of each architecture, saved in each baseline's published format,
loaded through its loader, and scored; scores checked against a direct computation on the tiny model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from annotation.demo import placeholder_png
from training.baselines import BaselineError, scores_per_dimension
from training.baselines.aesthetic import AestheticMLP, LaionAesthetic
from training.baselines.clip_models import ClipScore, HPSv2, PickScore
from training.baselines.image_reward import image_reward_module
from training.baselines.mps import MPSBaseline
from training.baselines.preprocessing import clip_processor_transform, hps_v2_transform
from training.baselines.registry import load_method
from training.mps import MPSScorer, import_open_clip, preprocess_images, tiny_config, tokenize
from training.mps.config import OPEN_CLIP_PAD_ID

PROMPT = "a red fox in the snow"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny_clip_config() -> dict:
    return copy.deepcopy(tiny_config().clip)


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_config):
    torch.manual_seed(1)
    model = import_open_clip().model.CLIP(**tiny_clip_config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(3.0)  # not the init value, so that a lost logit_scale shows
    return model


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("images")
    paths = []
    for seed in range(1, 4):
        path = root / f"image-{seed}.png"
        path.write_bytes(placeholder_png(seed, label="baseline"))
        paths.append(path)
    return paths


@torch.no_grad()
def _direct_cosines(model, config: dict, images: list, preprocessing=None) -> torch.Tensor:
    size = config["vision_cfg"]["image_size"]
    pixels = preprocess_images(images, size, preprocessing(size) if preprocessing else None)
    image_features = model.encode_image(pixels, normalize=True)
    text_features = model.encode_text(tokenize([PROMPT], pad_id=OPEN_CLIP_PAD_ID), normalize=True)
    return (image_features @ text_features.T)[:, 0]


def _state(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}


# --- CLIP score ---------------------------------------------------------------------------------------------


def test_clip_score_is_100_cosine_from_an_open_clip_state_dict(tiny_clip, tiny_clip_config, images, tmp_path):
    weights = tmp_path / "clip.safetensors"
    save_file(_state(tiny_clip), str(weights))
    scorer = ClipScore.from_path(weights, tiny_clip_config, device="cpu")
    expected = 100 * _direct_cosines(tiny_clip, tiny_clip_config, images)
    scores = scorer.score(PROMPT, images)
    assert len(scores) == 3 and all(isinstance(value, float) for value in scores)
    assert scores == pytest.approx(expected.tolist(), abs=TOLERANCE)
    # PIL images and paths give the same scores; an empty list gives none
    assert scorer.score(PROMPT, [Image.open(images[0])]) == pytest.approx(scores[:1], abs=TOLERANCE)
    assert scorer.score(PROMPT, []) == []


def test_clip_score_reads_an_open_clip_hub_directory(tiny_clip, tiny_clip_config, images, tmp_path):
    directory = tmp_path / "hub"
    directory.mkdir()
    torch.save(_state(tiny_clip), directory / "open_clip_pytorch_model.bin")
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_clip_config}))
    scorer = load_method("clip", directory, device="cpu", batch_size=2)  # batches of 2 for 3 images
    expected = 100 * _direct_cosines(tiny_clip, tiny_clip_config, images)
    assert scorer.score(PROMPT, images) == pytest.approx(expected.tolist(), abs=TOLERANCE)


def test_clip_score_refuses_weights_of_another_architecture(tiny_clip, tmp_path):
    weights = tmp_path / "clip.safetensors"
    save_file(_state(tiny_clip), str(weights))
    with pytest.raises(BaselineError, match=r"do not fit the open_clip architecture \(embed_dim 1024\).*another shape"):
        ClipScore.from_path(weights, "ViT-H-14", device="cpu")
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(BaselineError, match="not a weights file that can be read safely"):
        ClipScore.from_path(tmp_path / "notes.txt", "ViT-H-14")
    with pytest.raises(BaselineError, match="unknown open_clip architecture 'ViT-Q-99'"):
        ClipScore.from_path(weights, "ViT-Q-99")


# --- HPS v2 -------------------------------------------------------------------------------------------------


def test_hpsv2_checkpoint_with_module_prefix_scores_cosine(tiny_clip, tiny_clip_config, images, tmp_path):
    checkpoint = tmp_path / "HPS_v2_compressed.pt"
    state = {"module." + name: tensor for name, tensor in _state(tiny_clip).items()}
    torch.save({"epoch": 1, "name": "tiny", "state_dict": state}, checkpoint)
    scorer = HPSv2.from_path(checkpoint, tiny_clip_config, device="cpu")
    expected = _direct_cosines(tiny_clip, tiny_clip_config, images, hps_v2_transform)  # longest side, padded
    assert scorer.score(PROMPT, images) == pytest.approx(expected.tolist(), abs=TOLERANCE)
    assert all(-1 <= value <= 1 for value in scorer.score(PROMPT, images))


def test_hpsv2_refuses_a_file_that_is_not_an_open_clip_state_dict(tiny_clip_config, tmp_path):
    checkpoint = tmp_path / "wrong.pt"
    torch.save({"state_dict": {"layers.0.weight": torch.zeros(2, 2)}}, checkpoint)
    with pytest.raises(BaselineError, match=r"HPS v2: .*missing, e\.g\..*unknown, e\.g\. \['layers\.0\.weight'\]"):
        HPSv2.from_path(checkpoint, tiny_clip_config)
    torch.save({"epoch": 3}, checkpoint)
    with pytest.raises(BaselineError, match="holds dict, not a state dict of tensors"):
        HPSv2.from_path(checkpoint, tiny_clip_config)


# --- PickScore ----------------------------------------------------------------------------------------------

_LAYER_PARTS = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
                "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}  # fmt: skip
_TOP_LEVEL = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "logit_scale": "logit_scale",
}


def to_transformers_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip CLIP tensors -> transformers' CLIPModel names, written independently of the loader's mapping."""
    out = {}
    for name, tensor in state.items():
        if name in _TOP_LEVEL:
            out[_TOP_LEVEL[name]] = tensor
        elif name == "text_projection":
            out["text_projection.weight"] = tensor.t().contiguous()
        elif name == "visual.proj":
            out["visual_projection.weight"] = tensor.t().contiguous()
        else:
            visual = name.startswith("visual.")
            index, part = name.removeprefix("visual.").removeprefix("transformer.resblocks.").split(".", 1)
            base = f"{'vision_model' if visual else 'text_model'}.encoder.layers.{index}"
            if part.startswith("attn.in_proj_"):
                kind = part.removeprefix("attn.in_proj_")
                for letter, chunk in zip("qkv", tensor.chunk(3, dim=0), strict=True):
                    out[f"{base}.self_attn.{letter}_proj.{kind}"] = chunk.contiguous()
            else:
                module, kind = part.rsplit(".", 1)
                out[f"{base}.{_LAYER_PARTS[module]}.{kind}"] = tensor
    out["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)  # ignored, as transformers'
    return out


def _transformers_config(heads: int, hidden_act: str = "gelu") -> dict:
    tower = {"num_attention_heads": heads, "hidden_act": hidden_act, "layer_norm_eps": 1e-5}
    return {"architectures": ["CLIPModel"], "text_config": tower, "vision_config": dict(tower)}


def test_pickscore_from_a_transformers_directory_scores_like_the_open_clip_model(
    tiny_clip, tiny_clip_config, images, tmp_path
):
    directory = tmp_path / "pickscore"
    directory.mkdir()
    save_file(to_transformers_layout(_state(tiny_clip)), str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(_transformers_config(heads=2)))
    scorer = PickScore.from_path(directory, device="cpu")
    assert scorer.scale == pytest.approx(float(torch.tensor(3.0).exp()))
    expected = scorer.scale * _direct_cosines(tiny_clip, tiny_clip_config, images, clip_processor_transform)
    assert scorer.score(PROMPT, images) == pytest.approx(expected.tolist(), abs=TOLERANCE)
    assert scorer.embedder.config["vision_cfg"]["head_width"] == 48  # 96 wide / 2 heads, from config.json


def test_pickscore_matches_the_transformers_clip_inside_the_mps_fixture(mps_official_path, images, tmp_path):
    """The fixture's CLIP tensors were written by transformers itself: an independent check of the mapping."""
    from training.mps import load_checkpoint, read_pickled_module

    pickled = read_pickled_module(mps_official_path)
    clip_state = {
        key.removeprefix("model."): value for key, value in pickled.tensors.items() if key.startswith("model.")
    }
    weights = tmp_path / "pytorch_model.bin"
    torch.save(clip_state, weights)
    (tmp_path / "config.json").write_text(json.dumps(_transformers_config(heads=2)))
    scorer = PickScore.from_path(weights, device="cpu")
    backbone = load_checkpoint(mps_official_path).backbone
    config = {"vision_cfg": {"image_size": 224}}
    expected = backbone.logit_scale.exp() * _direct_cosines(backbone, config, images, clip_processor_transform)
    assert scorer.score(PROMPT, images) == pytest.approx(expected.tolist(), abs=TOLERANCE)


def test_pickscore_refuses_an_open_clip_file_and_needs_head_counts(tiny_clip, tmp_path):
    weights = tmp_path / "open_clip.safetensors"
    save_file(_state(tiny_clip), str(weights))
    with pytest.raises(BaselineError, match="not a transformers CLIP checkpoint"):
        PickScore.from_path(weights)
    hf = tmp_path / "hf" / "model.safetensors"
    hf.parent.mkdir()
    save_file(to_transformers_layout(_state(tiny_clip)), str(hf))
    with pytest.raises(BaselineError, match="cannot tell the towers' attention head counts"):
        PickScore.from_path(hf.parent)  # no config.json, no architecture, not ViT-H-14's shapes
    broken = to_transformers_layout(_state(tiny_clip))
    broken["vision_model.encoder.layers.0.mlp.fc1.weight"] = torch.zeros(5, 96)
    save_file(broken, str(hf))
    (hf.parent / "config.json").write_text(json.dumps(_transformers_config(heads=2)))
    with pytest.raises(BaselineError, match=r"PickScore: .*another shape"):
        PickScore.from_path(hf.parent)


# --- LAION aesthetic predictor ------------------------------------------------------------------------------


def test_laion_aesthetic_mlp_on_normalised_image_embeddings(tiny_clip, tiny_clip_config, images, tmp_path):
    torch.manual_seed(2)
    mlp = AestheticMLP((128, 1024, 128, 64, 16, 1)).eval()  # the published layout on a 128-d tiny CLIP
    assert sorted(mlp.state_dict()) == sorted(
        f"layers.{index}.{kind}" for index in (0, 2, 4, 6, 7) for kind in ("weight", "bias")
    )
    torch.save(mlp.state_dict(), tmp_path / "sac+logos+ava1-l14-linearMSE.pth")
    save_file(_state(tiny_clip), str(tmp_path / "clip.safetensors"))
    scorer = load_method(
        "aesthetic", tmp_path / "sac+logos+ava1-l14-linearMSE.pth", aesthetic_clip=tmp_path / "clip.safetensors",
        aesthetic_architecture=tiny_clip_config, device="cpu",
    )  # fmt: skip
    with torch.no_grad():
        embeddings = tiny_clip.encode_image(preprocess_images(images, 224))
        expected = mlp(embeddings / embeddings.norm(dim=-1, keepdim=True))[:, 0]
    scores = scorer.score(PROMPT, images)
    assert scores == pytest.approx(expected.tolist(), abs=TOLERANCE)
    assert scorer.score("a completely different prompt", images) == pytest.approx(scores, abs=TOLERANCE)


def test_laion_aesthetic_refuses_wrong_files(tiny_clip, tiny_clip_config, tmp_path):
    save_file(_state(tiny_clip), str(tmp_path / "clip.safetensors"))
    with pytest.raises(BaselineError, match="not the LAION aesthetic MLP"):
        LaionAesthetic.from_path(tmp_path / "clip.safetensors", tmp_path / "clip.safetensors", tiny_clip_config)
    torch.save(AestheticMLP().state_dict(), tmp_path / "mlp.pth")  # the published 768-d input
    with pytest.raises(BaselineError, match="the MLP takes 768-d embeddings, the CLIP gives 128-d"):
        LaionAesthetic.from_path(tmp_path / "mlp.pth", tmp_path / "clip.safetensors", tiny_clip_config)
    with pytest.raises(BaselineError, match="--aesthetic-clip"):
        load_method("aesthetic", tmp_path / "mlp.pth")


# --- MPS adapter, ImageReward, the interface ----------------------------------------------------------------


def test_mps_baseline_gives_mps_scores_per_dimension(mps_official_path, images):
    scorer = MPSScorer.from_checkpoint(mps_official_path, device="cpu", allow_untrained_dimensions=True)
    direct = scorer.score(PROMPT, images, ["overall", "detail"])["scores"]
    baseline = MPSBaseline(scorer, dimension="detail")
    assert baseline.score(PROMPT, images) == pytest.approx(direct["detail"], abs=TOLERANCE)
    per_dimension = scores_per_dimension(baseline, PROMPT, images, ["overall", "detail"])
    assert per_dimension["overall"] == pytest.approx(direct["overall"], abs=TOLERANCE)
    assert per_dimension["detail"] == pytest.approx(direct["detail"], abs=TOLERANCE)
    with pytest.raises(ValueError, match="unknown dimension 'beauty'"):
        MPSBaseline(scorer, dimension="beauty")


def test_mps_baseline_refuses_a_dimension_the_checkpoint_was_not_trained_on(mps_official_path, images):
    scorer = MPSScorer.from_checkpoint(mps_official_path, device="cpu")  # the published format: overall only
    with pytest.raises(ValueError, match="trained on overall only, not on detail"):
        MPSBaseline(scorer, dimension="detail")
    baseline = MPSBaseline(scorer)
    with pytest.raises(ValueError, match="not on aesthetics, alignment.*--allow-untrained-dimensions"):
        scores_per_dimension(baseline, PROMPT, images, ["aesthetics", "overall", "alignment"])
    assert len(baseline.score(PROMPT, images)) == len(images)


def test_a_dimension_agnostic_scorer_gives_the_same_scores_for_every_dimension():
    class Constant:
        name = "constant"

        def score(self, prompt, images):
            return [float(index) for index, _ in enumerate(images)]

    result = scores_per_dimension(Constant(), PROMPT, ["a", "b"], ["aesthetics", "overall"])
    assert result == {"aesthetics": [0.0, 1.0], "overall": [0.0, 1.0]}


def test_unknown_method_and_missing_path_are_refused(tmp_path):
    with pytest.raises(BaselineError, match="unknown method 'dalle'"):
        load_method("dalle", tmp_path)
    with pytest.raises(BaselineError, match="hpsv2: nothing at"):
        load_method("hpsv2", tmp_path / "absent.pt")


def test_image_reward_scores_through_its_package(tmp_path, images):
    pytest.importorskip("ImageReward", reason="image-reward is not installed (pip install image-reward)")
    module = image_reward_module()
    checkpoint = Path(module.__file__).parent / "ImageReward.pt"
    if not checkpoint.is_file():
        pytest.skip("no local ImageReward.pt checkpoint to load (tests never download)")
    scorer = load_method("imagereward", checkpoint, device="cpu")
    assert len(scorer.score(PROMPT, images)) == len(images)

"""ImageReward is never silently random: the checkpoint is checked before the package is needed, and fills
the package's model class exactly. The package itself (pinned old timm/transformers) is not installed
here, so its model class is stood in by a small module of the same import path and constructor."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from training.baselines import BaselineError
from training.baselines.registry import load_method

FAKE_MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    class ImageReward(nn.Module):
        # the package's constructor signature; parts named as its BLIP and MLP
        def __init__(self, med_config, device="cpu"):
            super().__init__()
            self.blip = nn.Module()
            self.blip.visual_encoder = nn.Linear(4, 4)
            self.blip.text_encoder = nn.Linear(4, 4)
            self.blip.text_encoder.register_buffer("position_ids", torch.arange(4))
            self.mlp = nn.Module()
            self.mlp.layers = nn.Sequential(nn.Linear(4, 1))

        def score(self, prompt, images):
            return [float(self.mlp.layers[0].bias.detach()) + index for index, _ in enumerate(images)]
    """
)


@pytest.fixture
def stand_in_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "ImageReward"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "ImageReward.py").write_text(FAKE_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield
    for name in [name for name in sys.modules if name == "ImageReward" or name.startswith("ImageReward.")]:
        del sys.modules[name]


def _state(bias: float = 7.0) -> dict[str, torch.Tensor]:
    return {
        "blip.visual_encoder.weight": torch.ones(4, 4),
        "blip.visual_encoder.bias": torch.zeros(4),
        "blip.text_encoder.weight": torch.ones(4, 4),
        "blip.text_encoder.bias": torch.zeros(4),
        "mlp.layers.0.weight": torch.ones(1, 4),
        "mlp.layers.0.bias": torch.tensor([bias]),
    }


def _checkpoint(tmp_path, state) -> str:
    folder = tmp_path / "imagereward"
    folder.mkdir(exist_ok=True)
    (folder / "med_config.json").write_text("{}")
    torch.save(state, folder / "ImageReward.pt")
    return str(folder)


def test_the_checkpoint_fills_the_model_and_its_weights_are_used(stand_in_package, tmp_path):
    scorer = load_method("imagereward", _checkpoint(tmp_path, _state(bias=7.0)), device="cpu")
    assert scorer.score("a cat", ["a.png", "b.png"]) == [7.0, 8.0]  # the file's bias, not a random one


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("mlp.layers.0.bias"), r"1 missing, e\.g\. \['mlp\.layers\.0\.bias'\]"),
        (lambda s: s.update({"mlp.layers.1.weight": torch.ones(1)}), r"1 unknown, e\.g\. \['mlp\.layers\.1\.weight'\]"),
        (lambda s: s.update({"mlp.layers.0.weight": torch.ones(2, 4)}), r"1 of another shape.*\(2, 4\) vs \(1, 4\)"),
    ],
)
def test_a_checkpoint_that_does_not_fit_exactly_is_refused(stand_in_package, tmp_path, change, message):
    state = _state()
    change(state)
    with pytest.raises(BaselineError, match=f"ImageReward: the checkpoint does not fit the model: .*{message}"):
        load_method("imagereward", _checkpoint(tmp_path, state), device="cpu")


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, "holds dict, not a state dict of tensors"),
        ({"layers.0.weight": torch.ones(2)}, r"not an ImageReward checkpoint: no blip\.visual_encoder\.\*"),
        ({"mlp.layers.0.weight": torch.ones(2)}, r"no blip\.visual_encoder\.\*, blip\.text_encoder\.\* tensors"),
    ],
)
def test_a_wrong_or_empty_file_is_refused_before_the_package_is_needed(tmp_path, state, message):
    with pytest.raises(BaselineError, match=message):
        load_method("imagereward", _checkpoint(tmp_path, state), device="cpu")


def test_without_the_package_a_right_file_is_refused_with_how_to_score_it_elsewhere(tmp_path):
    import importlib.util

    if importlib.util.find_spec("ImageReward") is not None:
        pytest.skip("the ImageReward package is installed here")
    with pytest.raises(BaselineError, match="install image-reward.*evaluate the score file with evaluate_scores"):
        load_method("imagereward", _checkpoint(tmp_path, _state()), device="cpu")

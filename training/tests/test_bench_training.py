"""The training benchmark: it runs on CPU with the tiny preset, and its analytic FLOP count agrees with
torch's FlopCounterMode on the real PairScorer step (tiny on CPU, ViT-H on the meta device: no compute)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from training.mps import MPSConfig, MPSModel
from training.mps.tokenizer import tokenize
from training.trainer.config import preset_model_config
from training.trainer.flops import training_step_flops
from training.trainer.objective import PairScorer, preference_loss

ROOT = Path(__file__).resolve().parents[2]
PAIRS = 3


def _counted(scorer: PairScorer, pairs: int, device: str, *, backward: bool) -> int:
    """FLOPs torch counts for one PairScorer forward (and backward). The math attention kernel runs as
    matmuls the counter sees (the fused CPU kernel is not counted)."""
    size = scorer.model.config.image_size
    prompt_ids = tokenize(["a red circle on a grey floor"] * pairs, pad_id=scorer.model.config.pad_id).to(device)
    pixels = torch.randn(pairs, 2, 3, size, size, device=device)
    labels = torch.tensor([[[1.0, 0.0]] * 4] * pairs, device=device)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        scores = scorer(prompt_ids, pixels)
        if backward:
            preference_loss(scores, labels).backward()
    return counter.get_total_flops()


@pytest.fixture(scope="module")
def tiny_scorer() -> PairScorer:
    torch.manual_seed(0)
    return PairScorer(MPSModel(preset_model_config("tiny")), 0.01).train()


def test_analytic_flops_match_the_counter_on_the_tiny_model(tiny_scorer):
    config = tiny_scorer.model.config
    plain = training_step_flops(config, PAIRS)
    assert _counted(tiny_scorer, PAIRS, "cpu", backward=False) == pytest.approx(plain.forward, rel=0.01)
    assert _counted(tiny_scorer, PAIRS, "cpu", backward=True) == pytest.approx(plain.model_training, rel=0.01)
    tiny_scorer.model.backbone.set_grad_checkpointing(True)
    try:
        counted = _counted(tiny_scorer, PAIRS, "cpu", backward=True)  # the recompute is real work: counted
    finally:
        tiny_scorer.model.backbone.set_grad_checkpointing(False)
    checkpointed = training_step_flops(config, PAIRS, activation_checkpointing=True)
    assert checkpointed.model_training == plain.model_training  # MFU's convention: recompute excluded
    assert counted == pytest.approx(checkpointed.hardware_training, rel=0.03)


def test_analytic_flops_match_the_counter_on_vit_h_without_computing_anything():
    with torch.device("meta"):  # shapes only: a billion parameters, no memory, no arithmetic
        scorer = PairScorer(MPSModel(MPSConfig()), 0.01).to("meta").train()
    expected = training_step_flops(MPSConfig(), 2)
    assert _counted(scorer, 2, "meta", backward=True) == pytest.approx(expected.model_training, rel=0.01)
    # ViT-H-14, 224 px: about 3.6 TFLOP per pair per training step.
    assert training_step_flops(MPSConfig(), 128).model_training / 128 == pytest.approx(3.645e12, rel=0.01)


def test_benchmark_runs_on_cpu_with_the_tiny_preset_and_prints_positive_figures():
    command = [sys.executable, "benchmarks/bench_training.py", "--preset", "tiny", "--device", "cpu", "--batch", "2"]
    command += ["--steps", "2", "--warmup", "1", "--eval-batch", "4", "--eval-images", "8"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = dict(re.findall(r"^(\w+): (.+)$", result.stdout, re.M))
    assert (figures["preset"], figures["device"], figures["batch_pairs"]) == ("tiny", "CPU", "2")
    numbers = ("step_s", "pairs_per_s", "peak_memory_gib", "model_tflop_per_step", "achieved_tflops", "mfu", "hfu",
               "eval_images_per_s", "eval_tflops")  # fmt: skip
    values = {name: float(figures[name]) for name in numbers}
    assert all(value > 0 for value in values.values()), values
    assert values["pairs_per_s"] == pytest.approx(2 / values["step_s"], rel=1e-3)
    assert values["hfu"] > values["mfu"]  # activation checkpointing is on by default: recompute is extra work
    assert values["mfu"] == pytest.approx(values["achieved_tflops"] / 989, rel=1e-3)

"""MPS training throughput (pairs/s, peak memory, model FLOPs utilisation) and evaluation throughput.

    python benchmarks/bench_training.py --preset vit-h --device cuda          # largest batch that fits, bf16
    python benchmarks/bench_training.py --preset tiny --device cpu --batch 4 --steps 2 --eval-images 16

Random weights (nothing is downloaded), synthetic pairs already on the device: this measures the model,
not JPEG decoding. Training runs the real trainer step (`Trainer.optimizer_step`: PairScorer forward under
autocast, the KL objective, backward, gradient clipping, AdamW, the schedule) with activation
checkpointing on by default. Evaluation scores images with `MPSScorer` on the four dimensions (inference
only), as `evaluate_mps` does.

FLOPs are counted analytically (`training/trainer/flops.py`): MFU = model FLOPs of a step (forward x3,
less the backward that parts without a gradient skip; the activation-checkpointing recompute NOT counted,
as MFU conventionally is) / step time / --peak-tflops (989: H100 SXM dense bf16). HFU adds the recompute.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "a red bicycle leaning on a blue wall, three birds on the roof, golden hour",
    "portrait of an old fisherman, detailed wrinkles, soft window light",
    "a bowl of ramen on a wooden table, steam, top view",
    "a castle on a cliff above a stormy sea, oil painting",
]
FIRST_SEARCH_BATCH = 8


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["tiny", "vit-h"], default="vit-h")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16", help="autocast (CUDA)")
    parser.add_argument("--batch", type=int, help="pairs per step (default: the largest that fits on CUDA, 4 on CPU)")
    parser.add_argument("--max-batch", type=int, default=4096, help="upper bound of the batch search")
    parser.add_argument("--no-activation-checkpointing", dest="checkpointing", action="store_false")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the device's dense peak (H100: 989 bf16)")
    parser.add_argument("--mode", choices=["train", "eval", "both"], default="both")
    parser.add_argument("--eval-batch", type=int, help="images per scoring batch (default: 64 CUDA, 16 CPU)")
    parser.add_argument("--eval-images", type=int, help="images per timed scoring run (default: 8 batches)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    return parser.parse_args(argv)


def build_trainer(args: argparse.Namespace, output_dir: str):
    """The project's Trainer with the preset's model (random weights) on the device; no data loaded."""
    import torch

    from training.trainer.config import TrainConfig
    from training.trainer.loop import Trainer

    config = TrainConfig(
        export_dir="",  # the benchmark feeds batches itself: Trainer.run() is never called
        output_dir=output_dir,
        preset=args.preset,
        precision=args.precision,
        activation_checkpointing=args.checkpointing,
        batch_size=args.batch or FIRST_SEARCH_BATCH,
        lr=1e-5,
        warmup_steps=10,
        log_tensorboard=False,
    )
    with torch.device(args.device):  # initialise on the device: ViT-H is about a billion parameters
        return Trainer(config, device=args.device)


def synthetic_batch(model_config, pairs: int, device) -> dict:
    """What PairDataset yields, on the device: prompt ids [B, 77], pixels [B, 2, 3, H, W], labels [B, 4, 2]."""
    import torch

    from training.mps.config import DIMENSIONS
    from training.mps.tokenizer import tokenize

    generator = torch.Generator().manual_seed(pairs)
    size = model_config.image_size
    first_wins = torch.randint(0, 2, (pairs, len(DIMENSIONS), 1), generator=generator).float()
    return {
        "prompt_ids": tokenize([PROMPTS[i % len(PROMPTS)] for i in range(pairs)], pad_id=model_config.pad_id).to(
            device
        ),
        "pixel_values": torch.randn(pairs, 2, 3, size, size, generator=generator).to(device),
        "labels": torch.cat([first_wins, 1 - first_wins], dim=-1).to(device),
    }


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(trainer, batch: dict, steps: int) -> float:
    """Seconds per optimizer step, the mean over `steps` steps of the real trainer step."""
    batches = iter(lambda: batch, None)  # the same synthetic batch for ever
    synchronize(trainer.env.device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.optimizer_step(batches)
    synchronize(trainer.env.device)
    return (time.perf_counter() - start) / steps


def fits(trainer, pairs: int) -> bool:
    """Whether one training step at `pairs` pairs runs without running out of GPU memory."""
    import torch

    try:
        timed_steps(trainer, synthetic_batch(trainer.scorer.model.config, pairs, trainer.env.device), 1)
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        trainer.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()


def largest_batch(trainer, limit: int) -> int:
    """Doubling from FIRST_SEARCH_BATCH until a step runs out of memory, then bisection to a multiple of 8."""
    low, high = 0, FIRST_SEARCH_BATCH
    while high <= limit and fits(trainer, high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 8:
        middle = (low + high) // 16 * 8
        low, high = (middle, high) if fits(trainer, middle) else (low, middle)
    if low == 0:
        raise SystemExit(f"not even {FIRST_SEARCH_BATCH} pairs fit on {trainer.env.device}")
    return low


def peak_memory_gib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # host RSS (KiB on Linux)


def bench_training(args: argparse.Namespace) -> dict:
    import torch

    from training.trainer.flops import training_step_flops

    with tempfile.TemporaryDirectory(prefix="bench-training-") as output_dir:
        trainer = build_trainer(args, output_dir)
        device = trainer.env.device
        pairs = args.batch or (largest_batch(trainer, args.max_batch) if device.type == "cuda" else 4)
        batch = synthetic_batch(trainer.scorer.model.config, pairs, device)
        timed_steps(trainer, batch, args.warmup)  # allocator, kernels and optimizer state at full size
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed_steps(trainer, batch, args.steps)
        flops = training_step_flops(trainer.scorer.model.config, pairs, activation_checkpointing=args.checkpointing)
        peak = args.peak_tflops * 1e12
        return {
            "batch_pairs": pairs,
            "step_s": seconds,
            "pairs_per_s": pairs / seconds,
            "peak_memory_gib": peak_memory_gib(device),
            "model_tflop_per_step": flops.model_training / 1e12,
            "achieved_tflops": flops.model_training / seconds / 1e12,
            "mfu": flops.model_training / seconds / peak,
            "hfu": flops.hardware_training / seconds / peak,
        }


def bench_evaluation(args: argparse.Namespace) -> dict:
    """Images scored per second on the four dimensions (one prompt, inference only)."""
    import torch

    from training.mps import DIMENSIONS, MPSModel, MPSScorer
    from training.trainer.config import preset_model_config
    from training.trainer.flops import scoring_flops

    device = torch.device(args.device)
    batch = args.eval_batch or (64 if device.type == "cuda" else 16)
    count = args.eval_images or 8 * batch
    torch.manual_seed(0)
    config = preset_model_config(args.preset)
    with torch.device(device):
        model = MPSModel(config)
    precision = args.precision if device.type == "cuda" else "fp32"
    scorer = MPSScorer(model, device=device, precision=precision, batch_size=batch)
    pixels = torch.randn(count, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    pixels = pixels.to(device)
    scorer.score_pixels(PROMPTS[0], pixels[:batch], DIMENSIONS)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    scorer.score_pixels(PROMPTS[0], pixels, DIMENSIONS)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "eval_batch": batch,
        "eval_images": count,
        "eval_images_per_s": count / seconds,
        "eval_tflops": scoring_flops(config, count, len(DIMENSIONS)) / seconds / 1e12,
    }


def main(argv: list[str] | None = None) -> dict:
    sys.path.insert(0, str(ROOT))  # run from anywhere without installing
    import torch

    args = parse_args(argv)
    device = torch.device(args.device)
    results = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "precision": args.precision if device.type == "cuda" else "fp32 (autocast is CUDA-only)",
        "activation_checkpointing": args.checkpointing,
        "peak_tflops": args.peak_tflops,
    }
    if args.mode in ("train", "both"):
        results |= bench_training(args)
    if args.mode in ("eval", "both"):
        results |= bench_evaluation(args)
    print(json.dumps(results) if args.json else format_results(results))
    return results


def format_results(results: dict) -> str:
    lines = [f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}" for key, value in results.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Scoring throughput of MPS (images/s) for one dimension and for all four, random weights.

    python benchmarks/bench_scoring.py --config tiny                       # CPU, seconds
    python benchmarks/bench_scoring.py --config vit-h --device cuda --dtype bf16 --batch 64

Pixels are random tensors: this measures the model (vision tower once per image, text towers once
per distinct text, cross model per image and dimension), not JPEG decoding. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

PROMPT = "a red bicycle leaning on a blue wall, three birds on the roof, golden hour"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", choices=["tiny", "vit-h"], default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=None, help="images per timed run (default: 4 batches)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best one is reported")
    return parser.parse_args(argv)


def build_scorer(args: argparse.Namespace):
    import torch

    from training.mps import MPSConfig, MPSModel, MPSScorer, tiny_config

    torch.manual_seed(0)
    config = tiny_config() if args.config == "tiny" else MPSConfig()
    with torch.device(args.device):  # initialise on the device: ViT-H is 1B parameters
        model = MPSModel(config)
    return MPSScorer(model, device=args.device, precision=args.dtype, batch_size=args.batch)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_scoring(scorer, pixels, dimensions: list[str], repeats: int) -> float:
    """Best images/s over ``repeats`` runs, after one warm-up run."""
    scorer.score_pixels(PROMPT, pixels, dimensions)  # warm-up: allocator and kernels at full size
    best = 0.0
    for _ in range(repeats):
        synchronize(scorer.device)
        start = time.perf_counter()
        scorer.score_pixels(PROMPT, pixels, dimensions)
        synchronize(scorer.device)
        best = max(best, pixels.shape[0] / (time.perf_counter() - start))
    return best


def peak_memory(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB GPU (allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB host RSS"


def main(argv: list[str] | None = None) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
    import torch

    from training.mps import DIMENSIONS

    args = parse_args(argv)
    scorer = build_scorer(args)
    count = args.images or 4 * args.batch
    size = scorer.model.config.image_size
    pixels = torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(0)).to(scorer.device)
    if scorer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(scorer.device)
    results = {
        "one dimension": time_scoring(scorer, pixels, ["overall"], args.repeats),
        "four dimensions": time_scoring(scorer, pixels, list(DIMENSIONS), args.repeats),
    }
    device_name = torch.cuda.get_device_name(scorer.device) if scorer.device.type == "cuda" else "CPU"
    print(
        f"MPS scoring, config={args.config}, device={device_name}, dtype={args.dtype}, batch={args.batch}, "
        f"images={count}, torch threads={torch.get_num_threads()}"
    )
    for label, rate in results.items():
        print(f"  {label:<16} {rate:10.1f} images/s")
    print(f"  peak memory      {peak_memory(scorer.device)}")
    return results


if __name__ == "__main__":
    main()

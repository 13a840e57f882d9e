"""Training data loading on this CPU, images/s per DataLoader worker (one process, one thread), three ways:

    python benchmarks/bench_data_loading.py                  # 1024 px PNG sources, model input 224
    python benchmarks/bench_data_loading.py --source-size 768 --source-format jpg --pairs 100

- JSONL + files: the compact pair table, each image opened from the media folder, decoded, resized and cropped;
- WebDataset, original images: the shard stream (shuffle buffer, tar reading with `webdataset`), same decoding;
- WebDataset, pre-resized: shards exported with `--image-short-side 256` (JPEG q95), decoded at 256 px.

The pictures are synthetic (gradients, shapes, blur, mild grain, so they compress about as generated images do)
and written once into a temporary folder; the shards are written by the project's own exporter. A worker's
figure times the whole per-pair work (decode both images, open_clip's eval transform, tokenize), not the model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=60, help="pairs timed per method and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per method; the best is reported")
    parser.add_argument("--images", type=int, default=40, help="distinct source pictures (pairs reuse them)")
    parser.add_argument("--source-size", type=int, default=1024, help="source pictures are this many px square")
    parser.add_argument("--source-format", choices=["png", "jpg"], default="png")
    parser.add_argument("--short-side", type=int, default=256, help="pre-resized shards' shorter side")
    parser.add_argument("--model-size", type=int, default=224, help="the model's input (ViT-H-14: 224)")
    parser.add_argument("--shard-size", type=int, default=40)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    return parser.parse_args(argv)


def synthetic_picture(seed: int, size: int):
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    top, bottom = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    picture = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    picture = Image.composite(
        Image.new("RGB", picture.size, top), Image.new("RGB", picture.size, bottom), picture.convert("L")
    )
    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randrange(size // 20, size // 4)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    picture = picture.filter(ImageFilter.GaussianBlur(size / 200))
    grain = Image.effect_noise((size, size), 12).convert("RGB")
    return Image.blend(picture, grain, 0.08)


def write_export(folder: Path, args: argparse.Namespace) -> Path:
    """pairs.jsonl + images/ in the export layout, all pairs in the train split."""
    (folder / "images").mkdir(parents=True)
    names = []
    for index in range(args.images):
        name = f"images/{index:04d}.{args.source_format}"
        synthetic_picture(index, args.source_size).save(folder / name, quality=90)
        names.append(name)
    rng = random.Random(0)
    with (folder / "pairs.jsonl").open("w") as export:
        for pair_id in range(args.pairs):
            first, second = rng.sample(names, 2)
            labels = {d: [1.0, 0.0] for d in ("aesthetics", "detail", "alignment", "overall")}
            record = {"pair_id": pair_id, "split": "train", "prompt": f"a picture number {pair_id}"}
            export.write(json.dumps({**record, "image_first": first, "image_second": second, "labels": labels}) + "\n")
    return folder


def shards_of(export: Path, folder: Path, args: argparse.Namespace, short_side: int) -> Path:
    from training.trainer.simulate import write_simulated_shards

    folder.mkdir()
    for name in ("pairs.jsonl", "images"):
        (folder / name).symlink_to(export / name)
    return write_simulated_shards(folder, shard_size=args.shard_size, image_short_side=short_side)


def images_per_second(examples) -> float:
    """Images per second over an iterator of pair examples (two images each)."""
    start, pairs = time.perf_counter(), 0
    for _ in examples:
        pairs += 1
    return 2 * pairs / (time.perf_counter() - start)


def jsonl_examples(export: Path, args: argparse.Namespace):
    from training.trainer.config import TrainConfig
    from training.trainer.data import pair_dataset

    config = TrainConfig(export_dir=str(export), image_root=str(export), data_format="jsonl")
    dataset = pair_dataset(config, "train", args.model_size)
    order = list(range(len(dataset)))
    random.Random(1).shuffle(order)
    return (dataset[index] for index in order)


def shard_examples(export: Path, args: argparse.Namespace):
    from itertools import islice

    from training.trainer.data import PairExamples
    from training.trainer.shards import ShardPairs, split_shards

    stream = ShardPairs(
        split_shards(export, "train"),
        PairExamples(args.model_size),
        rank=0,
        world_size=1,
        seed=0,
        shuffle_buffer=100,
        batch_size=1,
    )
    return islice(iter(stream), args.pairs)


def kilobytes_per_image(paths, images: int) -> float:
    return sum(path.stat().st_size for path in paths) / 1e3 / images


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import django
    import torch
    from django.conf import settings

    if not settings.configured:
        settings.configure()  # the exporter reads images through a storage object
        django.setup()
    torch.set_num_threads(1)  # one DataLoader worker's share of the machine
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary)
        export = write_export(base / "export", args)
        original = shards_of(export, base / "original", args, 0)
        small = shards_of(export, base / "resized", args, args.short_side)
        list(jsonl_examples(export, args))  # warm the page cache and the tokenizer: every method reads warm files
        methods = {
            "jsonl_files": lambda: jsonl_examples(export, args),
            "webdataset_original": lambda: shard_examples(original, args),
            "webdataset_resized": lambda: shard_examples(small, args),
        }
        # Best of the repeats, methods interleaved: the machine is shared and its speed drifts.
        figures = dict.fromkeys(methods, 0.0)
        for _ in range(args.repeats):
            for name, examples in methods.items():
                figures[name] = max(figures[name], images_per_second(examples()))
        shard_images = 2 * args.pairs
        sizes = {
            "source_kb_per_image": kilobytes_per_image((export / "images").iterdir(), args.images),
            "shards_original_kb_per_image": kilobytes_per_image((original / "webdataset").glob("*.tar"), shard_images),
            "shards_resized_kb_per_image": kilobytes_per_image((small / "webdataset").glob("*.tar"), shard_images),
        }
    keys = ("pairs", "repeats", "source_size", "source_format", "short_side", "model_size")
    setup = {key: getattr(args, key) for key in keys}
    if args.json:
        print(json.dumps({**setup, **figures, **sizes}))
        return 0
    print(f"setup: {setup}")
    for name, value in figures.items():
        print(f"{name:22s} {value:8.1f} images/s per worker")
    print("data: " + ", ".join(f"{name} {value:.1f}" for name, value in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

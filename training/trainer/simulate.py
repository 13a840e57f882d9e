"""Simulated preference data for training tests and demos: images with controlled brightness, sharpness
and content, judged by simulated annotators who follow one fixed rule per dimension."""

import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from training.mps.config import DIMENSIONS

COLOURS = {"red": (220, 40, 40), "blue": (40, 70, 220)}
SHAPES = ("circle", "square")
IMAGE_SIZE = 64


@dataclass(frozen=True)
class SimulatedImage:
    brightness: float  # 0.25-1: aesthetics prefers the brighter image
    blur: float  # 0-2.5 pixels: detail prefers the sharper image
    colour: str
    shape: str


def _draw(image: SimulatedImage) -> Image.Image:
    level = round(255 * image.brightness)
    canvas = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (level, level, level))
    draw = ImageDraw.Draw(canvas)
    box = (16, 16, 48, 48)
    colour = tuple(round(c * (0.5 + image.brightness / 2)) for c in COLOURS[image.colour])
    (draw.ellipse if image.shape == "circle" else draw.rectangle)(box, fill=colour)
    for x in range(0, IMAGE_SIZE, 8):  # fine texture that blur destroys
        draw.line([(x, 0), (x, 6)], fill=(0, 0, 0))
    return canvas.filter(ImageFilter.GaussianBlur(image.blur)) if image.blur else canvas


def _compare(a: float, b: float, margin: float) -> tuple[float, float]:
    if abs(a - b) < margin:
        return (0.5, 0.5)
    return (1.0, 0.0) if a > b else (0.0, 1.0)


def simulated_labels(prompt: tuple[str, str], first: SimulatedImage, second: SimulatedImage) -> dict:
    matches = [float((img.colour, img.shape) == prompt) for img in (first, second)]
    labels = {
        "aesthetics": _compare(first.brightness, second.brightness, 0.1),
        "detail": _compare(second.blur, first.blur, 0.5),
        "alignment": _compare(matches[0], matches[1], 0.5),
    }
    votes = sum(label[0] - label[1] for label in labels.values())
    labels["overall"] = _compare(votes, 0.0, 0.5) if votes else (0.5, 0.5)
    return {dimension: list(labels[dimension]) for dimension in DIMENSIONS}


def simulated_prompt(content: tuple[str, str]) -> str:
    # Words shared with the dimension conditions ("light", "color", "texture", "structure", "position")
    # give the condition mask something to select, as real prompts do.
    return f"a {content[0]} {content[1]} at the center position, soft light and color, fine texture and structure"


def _random_image(rng: random.Random, prompt: tuple[str, str]) -> SimulatedImage:
    colour, shape = prompt if rng.random() < 0.5 else (rng.choice(list(COLOURS)), rng.choice(SHAPES))
    return SimulatedImage(rng.uniform(0.25, 1.0), rng.choice((0.0, 0.0, 1.5, 2.5)), colour, shape)


def write_simulated_export(out_dir: Path, *, pairs: int, seed: int = 0, splits=(0.8, 0.1, 0.1)) -> Path:
    """A dataset export (pairs.jsonl + images/) of `pairs` simulated pairs; returns the folder."""
    rng = random.Random(seed)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    with (out_dir / "pairs.jsonl").open("w", encoding="utf-8") as export:
        for pair_id in range(pairs):
            prompt = (rng.choice(list(COLOURS)), rng.choice(SHAPES))
            first, second = _random_image(rng, prompt), _random_image(rng, prompt)
            names = [f"images/{pair_id:06d}_{side}.png" for side in ("first", "second")]
            for name, image in zip(names, (first, second), strict=True):
                _draw(image).save(out_dir / name)
            split = "train" if pair_id < splits[0] * pairs else "val" if pair_id < sum(splits[:2]) * pairs else "test"
            record = {
                "pair_id": pair_id,
                "split": split,
                "prompt": simulated_prompt(prompt),
                "image_first": names[0],
                "image_second": names[1],
                "labels": simulated_labels(prompt, first, second),
            }
            export.write(json.dumps(record) + "\n")
    return out_dir


def write_simulated_shards(export_dir: Path, *, shard_size: int, image_short_side: int = 0) -> Path:
    """The WebDataset shards of a simulated export (`write_simulated_export`), written by the project's own
    exporter reading the images from the export folder; needs Django settings. Returns the folder."""
    import os

    from django.core.files.storage import FileSystemStorage

    from datasets.exporters.records import partial
    from datasets.exporters.webdataset import WebDatasetExporter

    exporter = WebDatasetExporter(
        export_dir, shard_size=shard_size, image_short_side=image_short_side, storage=FileSystemStorage(export_dir)
    )
    with (export_dir / "pairs.jsonl").open(encoding="utf-8") as lines:
        rows = [export_row(json.loads(line)) for line in lines]
    # The exporter takes the rows in split order, as the export service streams them.
    for split in ("train", "val", "test"):
        exporter.write([row for row in rows if row[1] == split])
    for path in exporter.close():
        os.replace(partial(path), path)
    return export_dir


def export_row(record: dict) -> tuple:
    """A simulated record as a row in `datasets.selectors.EXPORT_COLUMNS` order."""
    labels = [p for dimension in DIMENSIONS for p in record["labels"][dimension]]
    names = (record["image_first"], record["image_second"])
    return (record["pair_id"], record["split"], 0, record["prompt"], "", *names, "", "", "sim", "sim", 1, 1.0, *labels)

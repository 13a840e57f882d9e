"""Hand-made benchmarks for the evaluation tests: placeholder images and a tiny ImageReward-format set."""

from pathlib import Path

from annotation.demo import placeholder_png
from datasets.models import BenchmarkKind, EvaluationItem, EvaluationSet

# Two prompts in the ImageReward test format, with a rank tie in the first.
IMAGEREWARD_ITEMS = [
    {"id": "p1", "prompt": "a red fox in the snow", "generations": ["p1/a.png", "p1/b.png", "p1/c.png"],
     "ranking": [1, 2, 2]},
    {"id": "p2", "prompt": "a lighthouse at dusk", "generations": ["p2/a.png", "p2/b.png"], "ranking": [2, 1]},
]  # fmt: skip


def placeholders(root: Path, paths: list[str], *, label: str) -> None:
    """A distinct placeholder PNG at each path; `label` is drawn in, so the images (and scores) depend on it."""
    for seed, relative in enumerate(paths, start=1):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(placeholder_png(seed, label=label))


def tiny_imagereward_set(root: Path, *, label: str = "baseline") -> EvaluationSet:
    """IMAGEREWARD_ITEMS as an imported set named ir-tiny, with placeholder images under ``root``."""
    placeholders(root, [path for item in IMAGEREWARD_ITEMS for path in item["generations"]], label=label)
    evaluation_set = EvaluationSet.objects.create(
        name="ir-tiny", kind=BenchmarkKind.IMAGEREWARD, image_root=str(root), item_count=2
    )
    for item in IMAGEREWARD_ITEMS:
        EvaluationItem.objects.create(evaluation_set=evaluation_set, external_id=item["id"], prompt=item["prompt"],
                                      images=item["generations"], ranking=item["ranking"])  # fmt: skip
    return evaluation_set

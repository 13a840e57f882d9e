"""The run's full configuration: a dataclass written next to its checkpoints."""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.mps.config import TRAINING_THRESHOLD, MPSConfig, tiny_config

PRESETS = ("tiny", "vit-h")


@dataclass
class TrainConfig:
    export_dir: str  # a dataset export: pairs.jsonl / pairs.parquet, or webdataset/ shards
    image_root: str = ""  # where the export's relative image paths live (the media root); unused for shards
    output_dir: str = "runs/mps"
    data_format: str = "auto"  # auto | jsonl | parquet | webdataset
    preset: str = "vit-h"
    init_checkpoint: str = ""  # a published or project MPS checkpoint to start from
    pretrained: str = ""  # open_clip backbone weights (local file) when not starting from a checkpoint
    steps: int = 30_000
    batch_size: int = 128  # pairs per optimizer step, over all devices and accumulation steps
    grad_accumulation: int = 1
    lr: float = 3e-6
    warmup_steps: int = 500
    weight_decay: float = 0.2
    grad_clip: float = 1.0
    precision: str = "bf16"  # bf16 | fp16 | fp32 (autocast on CUDA only; CPU runs fp32)
    activation_checkpointing: bool = False
    freeze_lower_blocks: int = 0
    mask_threshold: float = TRAINING_THRESHOLD
    val_every: int = 1000
    val_max_pairs: int = 10_000
    num_workers: int = 4  # DataLoader workers per process, for training and for validation
    shuffle_buffer: int = 1000  # WebDataset: pairs (undecoded bytes) mixed per worker; memory = this x pair size
    nproc_per_node: int = 0  # processes a run launches on its machine: 0 = one per GPU (one on a CPU machine)
    dist_timeout_minutes: int = 30  # collective timeout: covers rank 0 writing a checkpoint while others wait
    seed: int = 0
    log_tensorboard: bool = True
    model: dict[str, Any] = field(default_factory=dict)  # MPSConfig.to_dict(); filled from the preset

    def mps_config(self) -> MPSConfig:
        if self.model:
            return MPSConfig.from_dict(self.model)
        return preset_model_config(self.preset)

    def per_device_batch(self, world_size: int) -> int:
        per_step = self.batch_size // (world_size * self.grad_accumulation)
        if per_step < 1 or per_step * world_size * self.grad_accumulation != self.batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} must split evenly over {world_size} device(s) "
                f"x {self.grad_accumulation} accumulation step(s)"
            )
        return per_step

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(unknown)}")
        return cls(**data)


def preset_model_config(preset: str) -> MPSConfig:
    if preset == "tiny":
        config = tiny_config()
        # Small images keep CPU training runs (tests, demos) at seconds per hundred steps.
        config.clip["vision_cfg"].update({"image_size": 64, "patch_size": 16})
        return config
    if preset == "vit-h":
        return MPSConfig()  # ViT-H-14, laion2b_s32b_b79k: the paper's backbone
    raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")

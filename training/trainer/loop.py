"""The training loop: single device, or several with DistributedDataParallel (launched by torchrun)."""

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from training.mps import MPSModel, build_model, load_checkpoint, save_checkpoint
from training.mps.config import DIMENSIONS
from training.trainer.config import TrainConfig
from training.trainer.data import train_loader, val_loader
from training.trainer.objective import PairScorer, correct_and_counted, preference_loss
from training.trainer.optim import build_optimizer, freeze_lower_blocks, freeze_unused, warmup_cosine
from training.trainer.state import load_train_state, restore_rng_states, rng_states, save_train_state

LOG_EVERY = 10
# Called on the main process after each step with (step, total steps, latest metrics); returning False
# stops the run after writing its last checkpoint (cancellation from the web UI).
ProgressCallback = Callable[[int, int, dict], bool]


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_metric: float | None
    metrics: dict = field(default_factory=dict)
    cancelled: bool = False
    rank: int = 0
    fingerprint: str = ""  # sha256 of the weights: equal on every rank of a healthy DDP run
    world_size: int = 1


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None, *, timeout_minutes: int = 30) -> Distributed:
    """From torchrun's environment; `device` (single process only) overrides the cuda-when-available pick.

    `timeout_minutes` bounds every collective: rank 0 writing a ViT-H checkpoint (weights and AdamW state,
    about 12 GB) while the others wait at the barrier after it must fit, where NCCL's default is 10 minutes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is not None and world_size == 1:
        return Distributed(device=torch.device(device))
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Distributed(rank=rank, world_size=world_size, device=device)


# A tiny model trained from scratch needs token features that already tell words apart: the condition
# mask is a hard threshold that gets no gradient, so it only ever selects what the initial text features
# separate. CLIP pretraining gives the real backbone that; for the tiny preset a wide token embedding does.
TINY_TOKEN_EMBEDDING_STD = 1.0


def initial_model(config: TrainConfig) -> MPSModel:
    if config.init_checkpoint:
        return load_checkpoint(config.init_checkpoint)
    torch.manual_seed(config.seed)  # the same random initialisation on every rank and every re-run
    model = build_model(config.mps_config(), pretrained=config.pretrained or None)
    if config.preset == "tiny" and not config.pretrained:
        torch.nn.init.normal_(model.backbone.token_embedding.weight, std=TINY_TOKEN_EMBEDDING_STD)
    return model


def _autocast(config: TrainConfig, device: torch.device):
    if device.type != "cuda" or config.precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if config.precision == "bf16" else torch.float16)


@torch.no_grad()
def validate(scorer: PairScorer, loader: DataLoader, config: TrainConfig, device: torch.device) -> dict:
    """Per-dimension accuracy on pairs whose label is not a tie; `mean` over the dimensions.

    Under DDP each rank passes its share of the pairs; the counts are summed over the ranks, so every rank
    returns the accuracy on all of them (the same figures as one process validating everything)."""
    scorer.eval()
    counts = torch.zeros(2, len(DIMENSIONS), dtype=torch.float64)  # correct, counted
    for batch in loader:
        with _autocast(config, device):
            scores = scorer(batch["prompt_ids"].to(device), batch["pixel_values"].to(device))
        hits, total = correct_and_counted(scores.float().cpu(), batch["labels"])
        counts += torch.stack([hits, total])
    scorer.train()
    if dist.is_initialized() and dist.get_world_size() > 1:
        summed = counts.to(device)
        dist.all_reduce(summed)
        counts = summed.cpu()
    correct, counted = counts
    # None, not NaN, for a dimension without decided pairs: the figures go to JSON columns.
    accuracy = {d: (correct[i] / counted[i]).item() if counted[i] else None for i, d in enumerate(DIMENSIONS)}
    decided = [value for value in accuracy.values() if value is not None]
    accuracy["mean"] = sum(decided) / len(decided) if decided else None
    return accuracy


def weights_fingerprint(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class MetricsLog:
    """metrics.jsonl on the main process, and TensorBoard when it is installed."""

    def __init__(self, output_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.path = output_dir / "metrics.jsonl"
        self.board = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
            self.board = SummaryWriter(str(output_dir / "tensorboard")) if SummaryWriter else None

    def write(self, step: int, **values: float | dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")
        if self.board is not None:
            for name, value in _flatten(values).items():
                self.board.add_scalar(name, value, step)


def _flatten(values: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float):
            flat[f"{prefix}{key}"] = value
    return flat


class Trainer:
    """One run: builds model, optimizer and data from a TrainConfig, trains, validates, checkpoints."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        on_progress: ProgressCallback | None = None,
        device: str | None = None,
    ):
        self.config, self.on_progress = config, on_progress
        self.env = setup_distributed(device, timeout_minutes=config.dist_timeout_minutes)
        self.output = Path(config.output_dir)
        self.output.mkdir(parents=True, exist_ok=True)
        model = initial_model(config)
        config.model = model.config.to_dict()
        freeze_unused(model)
        freeze_lower_blocks(model, config.freeze_lower_blocks)
        if config.activation_checkpointing:
            model.backbone.set_grad_checkpointing(True)
        self.scorer = PairScorer(model, config.mask_threshold).to(self.env.device)
        self.optimizer = build_optimizer(self.scorer, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(config.warmup_steps, config.steps)
        )
        self.step, self.best = 0, None
        if resume and self.last_path.exists():
            self._restore(load_train_state(self.last_path))
        self.wrapped = (
            DistributedDataParallel(self.scorer, device_ids=[self.env.device.index] if self.env.device.index else None)
            if self.env.world_size > 1
            else self.scorer
        )
        self.log = MetricsLog(self.output, self.env.main, config.log_tensorboard)
        if self.env.main:
            config.write(self.output / "config.json")

    @property
    def last_path(self) -> Path:
        return self.output / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.output / "best.pt"

    def _restore(self, state: dict) -> None:
        self.scorer.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best = state["step"], state["best"]
        restore_rng_states(state["rng"])

    def _save(self, path: Path) -> None:
        save_train_state(
            path,
            model=self.scorer.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            step=self.step,
            best=self.best,
            rng=rng_states(),
            config=self.config.to_dict(),
        )

    def run(self) -> TrainResult:
        image_size = self.scorer.model.config.image_size
        shape = {"rank": self.env.rank, "world_size": self.env.world_size, "image_size": image_size}
        batches = iter(train_loader(self.config, **shape, start_step=self.step))
        validation = val_loader(self.config, **shape)
        self.log.write(self.step, event="start", world_size=self.env.world_size)
        metrics, cancelled = {}, False
        while self.step < self.config.steps and not cancelled:
            started = time.perf_counter()
            loss = self.optimizer_step(batches)
            self.step += 1
            metrics = {"loss": loss, "lr": self.scheduler.get_last_lr()[0]}
            metrics["pairs_per_s"] = self.config.batch_size / (time.perf_counter() - started)
            if self.step % LOG_EVERY == 0 or self.step == self.config.steps:
                self.log.write(self.step, **metrics)
            if self.step % self.config.val_every == 0 or self.step == self.config.steps:
                metrics["val"] = self._validate_and_checkpoint(validation)
            cancelled = self._stop_requested(metrics)
        if cancelled:
            self._save_on_main(self.last_path)
        return TrainResult(
            step=self.step,
            output_dir=self.output,
            last_checkpoint=self.last_path,
            best_checkpoint=self.best_path if self.best_path.exists() else None,
            best_metric=self.best,
            metrics=metrics,
            cancelled=cancelled,
            rank=self.env.rank,
            fingerprint=weights_fingerprint(self.scorer.model),
            world_size=self.env.world_size,
        )

    def _stop_requested(self, metrics: dict) -> bool:
        """The main process's progress callback decides; every rank learns its answer (rank 0 alone stopping
        would leave the others waiting in the next all-reduce)."""
        stop = self.env.main and self.on_progress is not None
        stop = stop and self.on_progress(self.step, self.config.steps, metrics) is False
        if self.env.world_size > 1:
            flag = torch.tensor([int(stop)], device=self.env.device)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    def _save_on_main(self, path: Path) -> None:
        """Rank 0 writes, the others wait at a barrier (bounded by dist_timeout_minutes), so that none races
        ahead to a step whose checkpoint does not exist yet."""
        if self.env.main:
            self._save(path)
        if self.env.world_size > 1:
            dist.barrier()

    def optimizer_step(self, batches) -> float:
        """One optimizer step over `grad_accumulation` micro-batches drawn from `batches` (also what
        benchmarks/bench_training.py times on synthetic pairs); returns the summed loss."""
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(self.config.grad_accumulation):
            with self._gradient_sync(micro):
                total += self._micro_step(next(batches))
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.scorer.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return total

    def _gradient_sync(self, micro: int):
        # Accumulating micro-batches need no all-reduce; only the last one of a step synchronises.
        accumulating = micro < self.config.grad_accumulation - 1
        if accumulating and isinstance(self.wrapped, DistributedDataParallel):
            return self.wrapped.no_sync()
        return contextlib.nullcontext()

    def _micro_step(self, batch: dict) -> float:
        device = self.env.device
        with _autocast(self.config, device):
            scores = self.wrapped(batch["prompt_ids"].to(device), batch["pixel_values"].to(device))
            loss = preference_loss(scores, batch["labels"].to(device)) / self.config.grad_accumulation
        loss.backward()
        return loss.item()

    def _validate_and_checkpoint(self, validation: DataLoader | None) -> dict:
        """Every rank validates its share (the figures are summed over ranks), then rank 0 writes checkpoints."""
        accuracy = {}
        if validation is not None:
            accuracy = validate(self.scorer, validation, self.config, self.env.device)
            self.log.write(self.step, val=accuracy)
            # The same figures on every rank, so every rank keeps the same `best` (it is part of the state).
            if accuracy["mean"] is not None and (self.best is None or accuracy["mean"] > self.best):
                self.best = accuracy["mean"]
                if self.env.main:
                    self._save(self.best_path)
                    save_checkpoint(self.scorer.model, self.output / "best_model")
        self._save_on_main(self.last_path)
        return accuracy


def train(config: TrainConfig, *, resume: bool = False, on_progress: ProgressCallback | None = None) -> TrainResult:
    return Trainer(config, resume=resume, on_progress=on_progress).run()

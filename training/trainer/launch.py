"""A run on every device of its machine: in this process for one, through torchrun for several.

`train_on_all_devices` is what a run started from the web, `train_mps` or a Celery gpu task calls. With more
than one process it starts `python -m torch.distributed.run --standalone --nproc_per_node N -m
training.trainer.main ...` and speaks a line protocol with rank 0 over the children's stdout:

- rank 0 prints `PROGRESS_PREFIX {"step", "total", "metrics"}` after each step; this process passes it to the
  run's progress callback (the database row, a progress bar);
- when that callback returns False (cancel), this process creates the run's stop file; rank 0 sees it after
  its next step and every rank stops there, with last.pt written (the stop is broadcast from rank 0);
- each rank prints `RESULT_PREFIX {...}` at its end; the ranks must end with the same weights.

When this process dies (a killed worker), rank 0's next report hits a closed pipe and fails, and torchrun ends
the other ranks: no orphaned training goes on writing checkpoints.
"""

import json
import logging
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

from training.trainer.config import TrainConfig
from training.trainer.loop import ProgressCallback, TrainResult, train

PROGRESS_PREFIX = "MHP-TRAIN-PROGRESS "
RESULT_PREFIX = "MHP-TRAIN-RESULT "
STOP_FILE = "stop-requested"
_LOG_TAIL = 40  # child output lines kept for the failure message

log = logging.getLogger(__name__)


def local_process_count(config: TrainConfig) -> int:
    if config.nproc_per_node > 0:
        return config.nproc_per_node
    import torch

    return max(1, torch.cuda.device_count())


def train_on_all_devices(
    config: TrainConfig, *, resume: bool = False, on_progress: ProgressCallback | None = None
) -> TrainResult:
    processes = local_process_count(config)
    if processes == 1:
        return train(config, resume=resume, on_progress=on_progress)
    return _torchrun(config, processes, resume=resume, on_progress=on_progress)


def torchrun_command(config_path: Path, processes: int, *, resume: bool, stop_file: Path) -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    command += ["-m", "training.trainer.main", "--config-json", str(config_path), "--stop-file", str(stop_file)]
    return command + (["--resume"] if resume else [])


def _torchrun(config: TrainConfig, processes: int, *, resume: bool, on_progress: ProgressCallback | None):
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    config_path, stop_file = output / "launch-config.json", output / STOP_FILE
    config.write(config_path)
    stop_file.unlink(missing_ok=True)
    command = torchrun_command(config_path, processes, resume=resume, stop_file=stop_file)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ranks = _RankOutput(on_progress, stop_file)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    ) as children:
        try:
            for line in children.stdout:
                ranks.read(line)
        except BaseException:
            children.terminate()  # torchrun passes SIGTERM on to its ranks: nothing trains unwatched
            raise
    stop_file.unlink(missing_ok=True)
    if children.returncode != 0:
        message = "\n".join(ranks.tail)
        raise RuntimeError(f"torchrun ({processes} processes) exited with {children.returncode}: {message}")
    return _rank_zero_result(ranks.results, processes)


class _RankOutput:
    """The launching side of the protocol, fed the children's output line by line."""

    def __init__(self, on_progress: ProgressCallback | None, stop_file: Path) -> None:
        self.on_progress, self.stop_file = on_progress, stop_file
        self.results: list[dict] = []
        self.tail: deque[str] = deque(maxlen=_LOG_TAIL)

    def read(self, line: str) -> None:
        if line.startswith(PROGRESS_PREFIX):
            report = json.loads(line[len(PROGRESS_PREFIX) :])
            step, total, metrics = report["step"], report["total"], report["metrics"]
            if self.on_progress is not None and self.on_progress(step, total, metrics) is False:
                self.stop_file.touch()
        elif line.startswith(RESULT_PREFIX):
            self.results.append(json.loads(line[len(RESULT_PREFIX) :]))
        else:
            self.tail.append(line.rstrip())
            log.info("%s", line.rstrip())


def _rank_zero_result(results: list[dict], processes: int) -> TrainResult:
    if sorted(result["rank"] for result in results) != list(range(processes)):
        raise RuntimeError(f"expected the results of ranks 0-{processes - 1}, got {len(results)}")
    if len({result["fingerprint"] for result in results}) != 1:
        raise RuntimeError("the ranks ended with different weights: DistributedDataParallel went out of sync")
    first = min(results, key=lambda result: result["rank"])
    return result_from_json(first)


def result_to_json(result: TrainResult) -> dict:
    fields = dict(vars(result))
    for name in ("output_dir", "last_checkpoint", "best_checkpoint"):
        fields[name] = str(fields[name]) if fields[name] is not None else None
    return fields


def result_from_json(fields: dict) -> TrainResult:
    paths = {name: Path(fields[name]) if fields[name] else None for name in ("last_checkpoint", "best_checkpoint")}
    return TrainResult(**{**fields, **paths, "output_dir": Path(fields["output_dir"])})


def progress_reporter(stop_file: Path) -> ProgressCallback:
    """Rank 0's side of the protocol: report the step, and go on while no stop was asked for."""

    def report(step: int, total: int, metrics: dict) -> bool:
        print(PROGRESS_PREFIX + json.dumps({"step": step, "total": total, "metrics": metrics}), flush=True)
        return not stop_file.exists()

    return report

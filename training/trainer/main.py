"""`python -m training.trainer.main --export-dir DIR ...`: the trainer without Django (torchrun-friendly).

`main(argv)` is callable from tests; `manage.py train_mps` builds the same TrainConfig from a dataset version.
"""

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.trainer.config import PRESETS, TrainConfig
from training.trainer.launch import RESULT_PREFIX, progress_reporter, result_to_json
from training.trainer.loop import train

_BOOLEAN_OPTIONS = {f.name for f in dataclasses.fields(TrainConfig) if f.type in (bool, "bool")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train an MPS reward model on a dataset export.")
    parser.add_argument("--config-json", help="a JSON file of TrainConfig fields; flags override it")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt when present")
    parser.add_argument(
        "--stop-file",
        type=Path,
        help="report progress lines (rank 0) and stop, with last.pt written, once this file exists "
        "(how training.trainer.launch drives the ranks it starts)",
    )
    add_config_arguments(parser)
    return parser


def add_config_arguments(parser, *, skip: tuple[str, ...] = ()) -> None:
    """One optional flag per TrainConfig field (also used by `manage.py train_mps`)."""
    defaults = TrainConfig(export_dir="")
    for field in dataclasses.fields(TrainConfig):
        if field.name == "model" or field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.name in _BOOLEAN_OPTIONS:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = type(getattr(defaults, field.name))
            choices = PRESETS if field.name == "preset" else None
            parser.add_argument(
                flag, type=kind, default=None, choices=choices, help=f"default {getattr(defaults, field.name)!r}"
            )


def config_values(options: Mapping[str, Any]) -> dict:
    """The TrainConfig fields given in parsed flags (`vars(args)`, or a management command's options): those
    set, over the ones of the `config_json` file when one is named."""
    values = {}
    if options.get("config_json"):
        with open(options["config_json"], encoding="utf-8") as handle:
            values.update(json.load(handle))
    for field in dataclasses.fields(TrainConfig):
        given = options.get(field.name)
        if given is not None:
            values[field.name] = given
    return values


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = config_values(vars(args))
    if not values.get("export_dir"):
        raise SystemExit("--export-dir is required (a dataset export folder)")
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    on_progress = progress_reporter(args.stop_file) if args.stop_file else None
    result = train(config_from_args(args), resume=args.resume, on_progress=on_progress)
    print(RESULT_PREFIX + json.dumps(result_to_json(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

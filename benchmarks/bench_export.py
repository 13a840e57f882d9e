"""Freeze and export figures at scale, next to PostgreSQL's own COPY of the same columns.

    createdb -h 127.0.0.1 -U postgres mhp_bench6
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhp_bench6 SECRET_KEY=bench python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhp_bench6 SECRET_KEY=bench \
        python benchmarks/bench_export.py --prompts 250000 --pairs 1000000 --out /tmp/bench-export

Seeds the pairs with `seed_synthetic` when the database holds fewer judged pairs than asked, freezes a
version, then exports JSONL and Parquet, each in a fresh process (so its peak RSS is its own), and
times `COPY (SELECT <the export's columns>) TO STDOUT` written to a file, in the same run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhp.settings")


def _setup() -> None:
    import django

    django.setup()


def _child_export(name: str, fmt: str, out: Path) -> None:
    _setup()
    from datasets.models import DatasetVersion
    from datasets.services.export import dataset_export

    version = DatasetVersion.objects.get(name=name)
    start = time.perf_counter()
    manifest = dataset_export(version=version, formats=[fmt], out_dir=out)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(entry["size"] for entry in manifest["files"])
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "bytes": size}))


def _copy_seconds(name: str, out: Path) -> tuple[float, int]:
    from django.db import connection

    from datasets.models import DatasetVersion
    from datasets.selectors import export_items
    from datasets.services.export import SPLIT_ORDER

    version = DatasetVersion.objects.get(name=name)
    target = out / "copy.tsv"
    start = time.perf_counter()
    with target.open("wb") as handle, connection.cursor() as cursor:
        for split in SPLIT_ORDER:
            sql, params = export_items(version=version, split=split).query.sql_with_params()
            statement = f"COPY ({connection.ops.compose_sql(sql, params)}) TO STDOUT"
            with cursor.cursor.copy(statement) as copy:
                for block in copy:
                    handle.write(block)
    return time.perf_counter() - start, target.stat().st_size


def _export(name: str, fmt: str, out: Path) -> dict:
    folder = out / fmt
    command = [sys.executable, __file__, "--child-export", name, fmt, str(folder)]
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=250_000)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-export"))
    parser.add_argument("--child-export", nargs=3, metavar=("NAME", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_export:
        name, fmt, out = args.child_export
        return _child_export(name, fmt, Path(out))
    _setup()
    from annotation.models import Pair
    from datasets.services.freeze import FreezeOptions, dataset_freeze
    from datasets.services.synthetic import synthetic_seed

    have = Pair.objects.count()
    if have < args.pairs:
        start = time.perf_counter()
        counts = synthetic_seed(prompts=args.prompts, pairs=args.pairs - have, seed=have)
        print(f"seed: {counts} in {time.perf_counter() - start:.1f} s")
    name = f"bench-{int(time.time())}"
    start = time.perf_counter()
    version = dataset_freeze(name=name, options=FreezeOptions(seed=1))
    print(
        f"freeze {version.stats['pairs']} pairs: {time.perf_counter() - start:.1f} s  splits {version.stats['splits']}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    copy_seconds, copy_bytes = _copy_seconds(name, args.out)
    print(f"COPY (SELECT same columns) TO STDOUT -> file: {copy_seconds:.1f} s, {copy_bytes / 1e6:.0f} MB")
    for fmt in ("jsonl", "parquet"):
        figures = _export(name, fmt, args.out)
        print(
            f"{fmt:8s} export: {figures['seconds']:.1f} s = {figures['seconds'] / copy_seconds:.2f}x COPY, "
            f"peak RSS {figures['peak_rss_mb']:.0f} MB, {figures['bytes'] / 1e6:.0f} MB written"
        )


if __name__ == "__main__":
    main()

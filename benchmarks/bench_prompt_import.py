"""Prompt import + dedupe at scale: 100,000 prompts made from the shared DiffusionDB sample, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_prompt_import.py                       # both databases
    .venv/bin/python benchmarks/bench_prompt_import.py --databases sqlite --count 20000

The 8,000 real prompts of ../shared/data/diffusiondb_prompts.jsonl are multiplied with variations
(a word swapped for another, comma-separated parts reordered, a style suffix added, case and
punctuation noise), so the file holds exact duplicates (noise only), near-duplicates and distinct
prompts, as collected prompt dumps do. Each database gets its own empty benchmark database (a
temporary SQLite file; a PostgreSQL database `mhp_bench_prompts`), migrated, then dropped after.
The import runs in a child process so its peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) is
the import's alone; the child prints the seconds for `prompts_import` (streamed read, exact dedupe,
inserts, MinHash near-duplicate marking) and its report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "diffusiondb_prompts.jsonl"
PG_URL = "postgres://postgres@127.0.0.1:5432/"
PG_DATABASE = "mhp_bench_prompts"
TARGET_SECONDS, TARGET_MB = 30.0, 300.0
SWAPS = {
    "beautiful": "gorgeous",
    "portrait": "painting",
    "detailed": "intricate",
    "city": "town",
    "dark": "moody",
    "woman": "girl",
    "man": "guy",
    "forest": "woods",
    "sharp": "crisp",
    "art": "artwork",
    "digital": "cgi",
    "night": "evening",
}
SUFFIXES = [
    ", trending on artstation",
    ", 8k",
    ", octane render",
    ", by greg rutkowski",
    ", highly detailed",
    ", cinematic lighting",
    ", unreal engine",
    ", 35mm photo",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)  # internal: import FILE, print JSON
    return parser.parse_args(argv)


def variation(text: str, rng: random.Random) -> str:
    """One variation of a prompt: each change applies with its own probability, so some are exact copies."""
    words = text.split()
    if rng.random() < 0.5 and words:
        index = rng.randrange(len(words))
        words[index] = SWAPS.get(words[index].lower(), rng.choice(list(SWAPS.values())))
    text = " ".join(words)
    if rng.random() < 0.3 and "," in text:
        parts = [part.strip() for part in text.split(",")]
        rng.shuffle(parts)
        text = ", ".join(parts)
    if rng.random() < 0.4:
        text += rng.choice(SUFFIXES)
    if rng.random() < 0.3:
        text = text.upper() if rng.random() < 0.3 else text.capitalize()
    if rng.random() < 0.3:
        text = text.replace(",", " ,,") + "!!"
    return text


def generate(path: Path, count: int, seed: int) -> None:
    base = [json.loads(line)["prompt"] for line in SOURCE.open(encoding="utf-8")]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            text = base[index] if index < len(base) else variation(rng.choice(base), rng)
            out.write(json.dumps({"prompt": text, "source": "bench", "source_id": str(index)}) + "\n")


def child_run(file: str) -> None:
    import django

    django.setup()
    from annotation.prompts.services.imports import prompts_import

    started = time.perf_counter()
    summary = prompts_import(path=Path(file), source="bench").as_dict()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    keys = ("rows_read", "imported", "exact_duplicates", "near_duplicates", "invalid")
    print(json.dumps({"seconds": round(seconds, 2), "peak_mb": round(peak_mb), **{k: summary[k] for k in keys}}))


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "mhp.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-not-for-production"),
        "LOG_LEVEL": "WARNING",
    }


def _postgres_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL + "postgres", autocommit=True) as connection:
        connection.execute(sql)


def bench_one(database: str, file: Path, workdir: Path) -> dict:
    if database == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        _postgres_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        _postgres_admin(f"CREATE DATABASE {PG_DATABASE}")
        url = PG_URL + PG_DATABASE
    try:
        manage = [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"]
        subprocess.run(manage, cwd=ROOT, env=_env(url), check=True)
        child = [sys.executable, str(Path(__file__).resolve()), "--child", str(file)]
        output = subprocess.run(child, cwd=ROOT, env=_env(url), check=True, capture_output=True, text=True).stdout
    finally:
        if database == "postgres":
            _postgres_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        sys.path.insert(0, str(ROOT))
        child_run(args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-prompts-") as tmp:
        workdir = Path(tmp)
        file = workdir / "prompts.jsonl"
        generate(file, args.count, args.seed)
        print(f"{args.count} prompts ({file.stat().st_size / 1e6:.1f} MB) from {SOURCE.name}")
        for database in args.databases:
            result = bench_one(database, file, workdir)
            within = result["seconds"] < TARGET_SECONDS and result["peak_mb"] < TARGET_MB
            print(f"{database:9} {json.dumps(result)} {'within' if within else 'OVER'} target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

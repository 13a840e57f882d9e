import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from PIL import Image as PILImage
from PIL import ImageChops, ImageStat

from annotation.models import Image
from datasets.exporters.webdataset import resized
from datasets.models import DatasetItem, DatasetVersion, ExportJob
from datasets.services.export_jobs import export_job_run
from datasets.services.freeze import FreezeOptions, dataset_freeze
from datasets.tests.factories import JudgedPairs
from mhp.jobs import JobStatus

ROOT = Path(__file__).resolve().parents[2]


def _freeze_small(name: str = "exp") -> DatasetVersion:
    judged = JudgedPairs(annotators=3)
    choices = (["first", "first", "second"], ["tie", "second", "second"], ["first", "tie", "tie"])
    for index, category in enumerate(("animals", "food", "arts", None, "animals")):
        for n, pair in enumerate(judged.prompt_pairs(2, category=category)):
            judged.judge_all(pair, list(choices[(index + n) % 3]))
    return dataset_freeze(name=name, options=FreezeOptions(val=0.2, test=0.2, seed=5))


def _expected(version: DatasetVersion) -> list[dict]:
    """The export's records, built from the ORM independently of the export's own query."""
    order = {"train": 0, "val": 1, "test": 2}
    items = DatasetItem.objects.filter(version=version).select_related(
        "pair__prompt__category", "pair__image_first__generator", "pair__image_second__generator"
    )
    records = []
    for item in sorted(items, key=lambda i: (order[i.split], i.pk)):
        pair = item.pair
        records.append(
            {
                "pair_id": pair.pk,
                "split": item.split,
                "prompt_id": pair.prompt_id,
                "prompt": pair.prompt.text,
                "category": pair.prompt.category.slug if pair.prompt.category else None,
                "image_first": pair.image_first.file.name,
                "image_second": pair.image_second.file.name,
                "image_first_sha256": pair.image_first.sha256,
                "image_second_sha256": pair.image_second.sha256,
                "generator_first": pair.image_first.generator.name,
                "generator_second": pair.image_second.generator.name,
                "labels": item.labels,
                "annotator_count": item.annotator_count,
                "agreement": item.agreement,
            }
        )
    return records


def _read_shards(out: Path) -> tuple[list[dict], dict[str, bytes]]:
    records, images = [], {}
    for shard in sorted((out / "webdataset").glob("*.tar"), key=lambda p: (p.name.split("-")[0], p.name)):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member).read()
                if member.name.endswith(".json"):
                    record = json.loads(data)
                    assert shard.name.startswith(record["split"] + "-")
                    records.append(record)
                else:
                    images[member.name] = data
    order = {"train": 0, "val": 1, "test": 2}
    return sorted(records, key=lambda r: order[r["split"]]), images


def _verify_manifest(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert len(data) == entry["size"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    listed = {entry["path"] for entry in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == on_disk
    return manifest


@pytest.mark.django_db
def test_export_round_trip_jsonl_parquet_shards_and_manifest(tmp_path):
    version = _freeze_small()
    expected = _expected(version)
    assert {r["split"] for r in expected} == {"train", "val", "test"}
    call_command(
        "export_dataset",
        "exp",
        "--format",
        "jsonl,parquet,webdataset",
        "--out",
        tmp_path,
        "--shard-size",
        "2",
        verbosity=0,
    )

    lines = (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert list(json.loads(lines[0])) == list(expected[0])  # key order as documented

    table = pq.read_table(tmp_path / "pairs.parquet")
    assert table.num_rows == len(expected)
    assert [{**row, "labels": {k: list(v) for k, v in row["labels"].items()}} for row in table.to_pylist()] == expected

    records, images = _read_shards(tmp_path)
    assert records == expected
    for record in expected:
        key = f"{record['pair_id']:010d}"
        for side in ("first", "second"):
            data = images[f"{key}.{side}.png"]
            assert data == default_storage.open(record[f"image_{side}"]).read()
            assert hashlib.sha256(data).hexdigest() == record[f"image_{side}_sha256"]
    splits = version.stats["splits"]
    shard_names = sorted(p.name for p in (tmp_path / "webdataset").glob("*.tar"))
    expected_shards = sorted(f"{s}-{i:06d}.tar" for s, n in splits.items() for i in range((n + 1) // 2))
    assert shard_names == expected_shards

    manifest = _verify_manifest(tmp_path)
    assert manifest["version"] == "exp" and manifest["counts"]["pairs"] == len(expected) == 10
    assert manifest["counts"]["splits"] == splits
    assert not list(tmp_path.rglob("*.partial"))


@pytest.mark.django_db
def test_rerun_keeps_a_complete_export_and_restarts_a_different_one(tmp_path):
    _freeze_small()
    call_command("export_dataset", "exp", "--format", "jsonl,webdataset", "--out", tmp_path, verbosity=0)
    stamp = (tmp_path / "pairs.jsonl").stat().st_mtime_ns
    first = json.loads((tmp_path / "manifest.json").read_text())
    call_command("export_dataset", "exp", "--format", "webdataset,jsonl", "--out", tmp_path, verbosity=0)
    assert (tmp_path / "pairs.jsonl").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "manifest.json").read_text()) == first

    call_command("export_dataset", "exp", "--format", "parquet", "--out", tmp_path, verbosity=0)
    manifest = _verify_manifest(tmp_path)  # the old jsonl and shards are gone, not listed as stale files
    assert [entry["path"] for entry in manifest["files"]] == ["pairs.parquet", "judgements.parquet"]


@pytest.mark.django_db
def test_export_refusals_change_nothing(tmp_path):
    from django.core.management import CommandError

    _freeze_small()
    with pytest.raises(CommandError, match="no dataset version named 'nope'"):
        call_command("export_dataset", "nope", "--out", tmp_path, verbosity=0)
    with pytest.raises(CommandError, match=r"unknown or no formats \['csv'\]"):
        call_command("export_dataset", "exp", "--format", "jsonl,csv", "--out", tmp_path, verbosity=0)
    assert ExportJob.objects.count() == 0 and not list(tmp_path.iterdir())


@pytest.mark.django_db
def test_missing_image_fails_the_job_without_finished_files(tmp_path):
    version = _freeze_small()
    default_storage.delete(Image.objects.order_by("id").first().file.name)
    with pytest.raises(Exception, match="missing from storage"):
        call_command("export_dataset", "exp", "--format", "jsonl,webdataset", "--out", tmp_path, verbosity=0)
    job = ExportJob.objects.get(version=version)
    assert job.status == JobStatus.FAILED and "missing from storage" in job.error
    assert not (tmp_path / "manifest.json").exists() and not (tmp_path / "pairs.jsonl").exists()


_SLOW_EXPORT = """
import sys, time, django
django.setup()
from datasets.exporters import webdataset
read = webdataset._image_bytes
def slow(storage, name):
    time.sleep(0.15)  # stretch the export so the test can kill it in the middle
    return read(storage, name)
webdataset._image_bytes = slow
from django.core.management import call_command
call_command("export_dataset", "exp", "--format", "jsonl,parquet,webdataset", "--out", sys.argv[1], "--shard-size", "1")
"""


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_killed_export_leaves_no_finished_file_and_rerun_completes(tmp_path):
    _freeze_small()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mhp.settings",
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECRET_KEY": "test-only",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-c", _SLOW_EXPORT, str(tmp_path)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while not list(tmp_path.rglob("*.tar.partial"))[1:] and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the export ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert left and all(name.endswith(".partial") for name in left), left
    stuck = ExportJob.objects.get()
    assert stuck.status == JobStatus.RUNNING

    job = export_job_run(job_id=stuck.pk)  # what a redelivered task does
    assert job.status == JobStatus.SUCCEEDED, job.error
    manifest = _verify_manifest(tmp_path)
    assert not list(tmp_path.rglob("*.partial"))
    assert manifest["counts"]["pairs"] == 10
    assert len([e for e in manifest["files"] if e["path"].endswith(".tar")]) == 10


@pytest.mark.django_db
def test_an_unexpected_error_fails_the_job_and_a_retry_after_the_fix_completes(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    from datasets.services import export_jobs

    version = _freeze_small()

    def broken(**kwargs):
        raise ZeroDivisionError("a bug nobody expected")

    monkeypatch.setattr(export_jobs, "dataset_export", broken)
    job = export_jobs.export_job_create(version=version, formats=["jsonl"], out_dir=tmp_path / "out", enqueue=False)
    job = export_jobs.export_job_run(job_id=job.pk)
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error.startswith("unexpected error (ZeroDivisionError: a bug nobody expected)")

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        export_jobs.export_job_retry(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.progress) == (JobStatus.SUCCEEDED, "", 1.0)
    assert _verify_manifest(tmp_path / "out")["counts"]["pairs"] == job.metrics["pairs"] > 0


@pytest.mark.django_db
def test_pre_resized_shards_hold_jpegs_of_the_given_short_side_and_an_index(tmp_path):
    _freeze_small()
    call_command(
        "export_dataset", "exp", "--format", "webdataset", "--out", tmp_path, "--shard-size", "3",
        "--image-short-side", "16", verbosity=0,
    )  # fmt: skip
    records, images = _read_shards(tmp_path)
    assert len(images) == 2 * len(records) == 20
    for record in records:
        key = f"{record['pair_id']:010d}"
        data = images[f"{key}.first.jpg"]
        with PILImage.open(io.BytesIO(data)) as stored, default_storage.open(record["image_first"]) as source:
            original = PILImage.open(source).convert("RGB")
            assert stored.format == "JPEG" and stored.size == (16, 16) and original.width > 16
            expected = original.resize((16, 16), PILImage.Resampling.BICUBIC)
            difference = ImageStat.Stat(ImageChops.difference(stored.convert("RGB"), expected)).mean
            assert max(difference) < 8  # mean per channel, 0-255; another picture differs by tens
    index = json.loads((tmp_path / "webdataset" / "index.json").read_text())
    assert sum(index.values()) == 10 and index == {
        shard.name: _pairs_in(shard) for shard in (tmp_path / "webdataset").glob("*.tar")
    }
    manifest = _verify_manifest(tmp_path)
    assert manifest["options"]["image_short_side"] == 16


def test_resize_keeps_the_aspect_ratio_and_leaves_small_images_alone():
    wide = io.BytesIO()
    PILImage.new("RGB", (100, 60), (10, 200, 30)).save(wide, format="PNG")
    data, extension = resized(wide.getvalue(), "a/b.png", 30)
    assert extension == "jpg" and PILImage.open(io.BytesIO(data)).size == (50, 30)
    assert resized(wide.getvalue(), "a/b.png", 60) == (wide.getvalue(), "png")


def _pairs_in(shard: Path) -> int:
    with tarfile.open(shard) as tar:
        return sum(1 for member in tar if member.name.endswith(".json"))

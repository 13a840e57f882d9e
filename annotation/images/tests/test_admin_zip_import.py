"""The admin's zip upload of images: stored by the request, imported by a job reading the zip as streams."""

import html
import io
import json
import os
import subprocess
import sys
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation import roles
from annotation.images.services.zip_import import ZipImportError, image_zip_import_job_run, images_import_zip
from annotation.images.tests.test_image_import import _corrupted, _image_bytes
from annotation.models import Generator, Image, ImportJob, ImportKind
from annotation.tests.factories import make_prompt, make_user
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db
UPLOAD = reverse("admin:annotation_image_zip_upload")


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def prompt():
    return make_prompt("a windmill in a tulip field")


def _zip(members: dict[str, bytes], *, manifest: list[dict] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        if manifest is not None:
            bundle.writestr("manifest.jsonl", "\n".join(json.dumps(row) for row in manifest) + "\n")
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _line(prompt, path: str, generator: str = "zip-gen", **extra) -> dict:
    return {"prompt": prompt.pk, "generator": generator, "path": path, **extra}


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(roles.ADMIN))
    return client


def _upload(client, data: bytes, name: str = "batch.zip"):
    upload = SimpleUploadedFile(name, data, content_type="application/zip")
    return client.post(UPLOAD, {"file": upload, "create_generators": "on"})


@pytest.fixture
def upload_and_run(admin_client, django_capture_on_commit_callbacks):
    """Post the zip and run the job the request queued (as the worker would)."""

    def run(data: bytes, name: str = "batch.zip"):
        with django_capture_on_commit_callbacks(execute=True):
            return _upload(admin_client, data, name)

    return run


def _assert_nothing_stored() -> None:
    assert not Image.objects.exists()
    assert not ImportJob.objects.exists()
    assert not Generator.objects.exists()


def test_image_changelist_links_to_the_upload_page(admin_client):
    page = admin_client.get(reverse("admin:annotation_image_changelist")).content.decode()
    assert f'href="{UPLOAD}"' in page


def test_a_good_zip_imports_its_images_and_shows_the_report(admin_client, prompt, upload_and_run):
    data = _zip(
        {"img/a.png": _image_bytes("PNG", seed=1), "img/b.webp": _image_bytes("WEBP", seed=2)},
        manifest=[_line(prompt, "img/a.png", seed=5, settings={"steps": 20}), _line(prompt, "img/b.webp")],
    )
    response = upload_and_run(data)
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:annotation_image_zip_progress", args=[job.pk])
    images = {image.source_path: image for image in Image.objects.select_related("generator")}
    assert sorted(images) == ["img/a.png", "img/b.webp"]
    assert (images["img/a.png"].seed, images["img/a.png"].settings, images["img/a.png"].width) == (5, {"steps": 20}, 64)
    assert {image.generator.name for image in images.values()} == {"zip-gen"}
    assert images["img/a.png"].file.read() == _image_bytes("PNG", seed=1)
    assert (job.kind, job.status, job.progress, job.original_name) == (ImportKind.IMAGES, "succeeded", 1.0, "batch.zip")
    assert job.summary["imported"] == 2 and job.summary["refused"] == 0
    report = admin_client.get(response.url).content.decode()
    assert "<th>imported</th><td>2</td>" in report and "zip-gen" in report and 'http-equiv="refresh"' not in report


def test_a_corrupt_image_is_reported_and_the_good_ones_kept(admin_client, prompt, upload_and_run):
    data = _zip(
        {"a.png": _image_bytes("PNG", seed=3), "bad.png": _corrupted(_image_bytes("PNG", seed=4))},
        manifest=[_line(prompt, "a.png"), _line(prompt, "bad.png"), _line(prompt, "missing.png")],
    )
    response = upload_and_run(data)
    assert response.status_code == 302
    assert list(Image.objects.values_list("source_path", flat=True)) == ["a.png"]
    summary = ImportJob.objects.get().summary
    assert (summary["lines_read"], summary["imported"], summary["refused"]) == (3, 1, 2)
    reasons = {row["path"]: row["reason"] for row in summary["refused_lines"]}
    assert reasons["bad.png"].startswith("corrupt or truncated image")
    assert reasons["missing.png"] == "file not found"
    report = admin_client.get(response.url).content.decode()
    assert "bad.png" in report and "corrupt or truncated image" in report


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"these are notes, not a zip\n" * 10, "not a zip file, or its directory is damaged"),
        (_zip({"a.png": b"x"}), "no manifest.jsonl at the root of the zip"),
        (_zip({"../evil.png": b"x"}, manifest=[]), "climbs out of the zip's root"),
        (_zip({"/etc/evil.png": b"x"}, manifest=[]), "has an absolute path"),
        (_zip({"C:/evil.png": b"x"}, manifest=[]), "has an absolute path"),
    ],
    ids=["not-a-zip", "no-manifest", "zip-slip", "absolute", "drive"],
)
def test_an_unusable_zip_is_refused_with_its_reason_and_nothing_stored(admin_client, prompt, data, message, media):
    response = _upload(admin_client, data)
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    _assert_nothing_stored()
    assert not media.exists() or not any(media.rglob("*.*"))


def test_an_unusable_zip_found_by_the_job_fails_it_with_its_reason(prompt, media):
    """The form checks the zip too, but the job must not trust that the stored file is the one checked."""
    job = ImportJob.objects.create(kind=ImportKind.IMAGES, original_name="notes.zip")
    job.upload.save("notes.zip", io.BytesIO(b"notes, not a zip\n" * 10))
    job = image_zip_import_job_run(job_id=job.pk)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("not a zip file, or its directory is damaged") and "nothing was imported" in job.error
    assert not Image.objects.exists() and not Generator.objects.exists()


def test_a_damaged_member_is_refused_on_its_line_and_the_rest_imported(prompt, upload_and_run):
    data = bytearray(
        _zip(
            {"a.png": _image_bytes("PNG", seed=6), "b.png": _image_bytes("PNG", seed=7)},
            manifest=[_line(prompt, "b.png"), _line(prompt, "a.png")],
        )
    )
    # Damage b.png's compressed bytes (its CRC no longer matches) while a.png is fine.
    start = data.index(b"b.png") + len("b.png") + 100
    data[start : start + 32] = bytes(32)
    upload_and_run(bytes(data))
    job = ImportJob.objects.get()
    assert job.status == JobStatus.SUCCEEDED
    assert job.summary["refused_lines"] == [
        {"line": 1, "path": "b.png", "reason": "corrupt zip member: Bad CRC-32 for file 'b.png'"}
    ]
    assert list(Image.objects.values_list("source_path", flat=True)) == ["a.png"]


def test_zip_bombs_are_refused_by_declared_bytes_and_by_member_count(prompt):
    bomb = _zip({"zeros.png": bytes(5 * 1024 * 1024)}, manifest=[_line(prompt, "zeros.png")])
    assert len(bomb) < 20_000  # a small archive that inflates to 5 MiB
    with pytest.raises(ZipImportError, match="unpacks to more than 1,048,576 bytes"):
        images_import_zip(archive=io.BytesIO(bomb), max_bytes=1024 * 1024)
    many = _zip({f"f{i}.txt": b"" for i in range(30)}, manifest=[])
    with pytest.raises(ZipImportError, match="holds 31 members; at most 20"):
        images_import_zip(archive=io.BytesIO(many), max_members=20)
    assert not Image.objects.exists()


def test_a_zip_of_one_folder_is_read_from_that_folder(prompt):
    data = _zip(
        {
            "batch/a.png": _image_bytes("PNG", seed=8),
            "batch/manifest.jsonl": json.dumps(_line(prompt, "a.png")).encode(),
        }
    )
    summary = images_import_zip(archive=io.BytesIO(data), name="batch.zip", create_generators=True)
    assert (summary.imported, summary.manifest) == (1, "batch.zip: batch/manifest.jsonl")


def test_a_member_path_that_climbs_out_of_the_manifest_folder_is_refused_on_its_line(prompt):
    data = _zip(
        {"batch/manifest.jsonl": json.dumps(_line(prompt, "../outside.png")).encode(), "outside.png": b"x"},
    )
    summary = images_import_zip(archive=io.BytesIO(data), create_generators=True)
    assert summary.refused_lines == [{"line": 1, "path": "../outside.png", "reason": "path leaves the root folder"}]


# The memory bound, in a fresh interpreter so that nothing else the test process holds counts: a member
# of 1.5 GB of zeros (a zip of about 1.5 MB) is refused on its line from its declared size, never read.
_ZIP_MEMORY_PROBE = """
import io, json, resource, sys, zipfile
import django
django.setup()
from annotation.images.services import sources
from annotation.images.services.zip_import import zip_open_checked
from annotation.images.services.imports import images_import_from
path = sys.argv[1]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
bundle, manifest = zip_open_checked(open(path, "rb"))
reasons = []
source = sources.ZipSource(bundle, manifest)
try:
    source.image_bytes("zeros.png")
except sources.ManifestLineError as error:
    reasons.append(str(error))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "reasons": reasons}))
"""


def test_a_huge_member_is_refused_without_being_read_whole(tmp_path):
    archive = tmp_path / "bomb.zip"
    size = 1536 * 1024**2
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        bundle.writestr("manifest.jsonl", json.dumps({"prompt": 1, "generator": "g", "path": "zeros.png"}) + "\n")
        with bundle.open("zeros.png", "w", force_zip64=True) as member:
            chunk = bytes(16 * 1024**2)
            for _ in range(size // len(chunk)):
                member.write(chunk)
    assert archive.stat().st_size < 10 * 1024**2
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mhp.settings"}
    done = subprocess.run(
        [sys.executable, "-c", _ZIP_MEMORY_PROBE, str(archive)], capture_output=True, text=True, env=env, check=True
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["reasons"] == ["the file is 1,610,612,736 bytes; at most 268,435,456 are accepted"]
    assert probe["growth_kib"] < 64 * 1024, probe


def test_a_zip_of_20000_images_is_only_stored_and_queued_by_the_request(admin_client, prompt):
    buffer = io.BytesIO()
    tiny = _image_bytes("PNG", size=(2, 2), seed=1)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        lines = (json.dumps(_line(prompt, f"img/{i}.png")) for i in range(20_000))
        bundle.writestr("manifest.jsonl", "\n".join(lines))
        for i in range(19_999):
            bundle.writestr(f"img/{i}.png", tiny)
    started = time.monotonic()
    response = _upload(admin_client, buffer.getvalue())
    elapsed = time.monotonic() - started
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.status == JobStatus.QUEUED and not Image.objects.exists()
    assert elapsed < 10, f"the upload request took {elapsed:.1f} s"
    page = admin_client.get(response.url).content.decode()
    assert 'http-equiv="refresh"' in page and "Queued" in page


@pytest.mark.parametrize("role", [roles.ANNOTATOR, roles.REVIEWER])
def test_annotators_and_reviewers_cannot_reach_the_upload(client, prompt, role):
    client.force_login(make_user(role))
    assert client.get(UPLOAD).url.startswith(reverse("admin:login"))
    data = _zip({"a.png": _image_bytes("PNG", seed=9)}, manifest=[_line(prompt, "a.png")])
    response = _upload(client, data)
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    _assert_nothing_stored()


def test_staff_without_the_image_permission_is_refused(client, prompt):
    user = make_user()
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get(UPLOAD).status_code == 403
    data = _zip({"a.png": _image_bytes("PNG", seed=10)}, manifest=[_line(prompt, "a.png")])
    assert _upload(client, data).status_code == 403
    _assert_nothing_stored()


def test_a_zip_gone_from_storage_or_an_unexpected_error_fails_the_job_and_a_retry_completes(
    prompt, monkeypatch, django_capture_on_commit_callbacks
):
    from annotation.images.services import zip_import

    upload = SimpleUploadedFile(
        "batch.zip", _zip({"a.png": _image_bytes("PNG", seed=21)}, manifest=[_line(prompt, "a.png")])
    )
    job = zip_import.image_zip_import_job_create(upload=upload, created_by=None, create_generators=True)
    data = job.upload.read()
    job.upload.storage.delete(job.upload.name)
    job = image_zip_import_job_run(job_id=job.pk)
    assert (job.status, job.error) == (JobStatus.FAILED, "the uploaded zip is gone from storage; upload it again")

    job.upload.storage.save(job.upload.name, io.BytesIO(data))

    def broken(**kwargs):
        raise KeyError("a bug nobody expected")

    monkeypatch.setattr(zip_import, "images_import_from", broken)
    with django_capture_on_commit_callbacks(execute=True):
        zip_import.image_zip_import_job_retry(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error.startswith(
        "unexpected error (KeyError: 'a bug nobody expected')"
    )
    assert not Image.objects.exists() and not Generator.objects.exists()

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        zip_import.image_zip_import_job_retry(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.progress, job.summary["imported"]) == (JobStatus.SUCCEEDED, "", 1.0, 1)

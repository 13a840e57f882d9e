"""The admin's zip upload of images: the command's import behind a safe unpacking step."""

import html
import io
import json
import tempfile
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation import roles
from annotation.images.services.zip_import import ZipImportError, images_import_zip
from annotation.images.tests.test_image_import import _corrupted, _image_bytes
from annotation.models import Image, ImportJob, ImportKind
from annotation.tests.factories import make_prompt, make_user

pytestmark = pytest.mark.django_db
UPLOAD = reverse("admin:annotation_image_zip_upload")


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """Temporary folders go under tmp_path, so a test can see that the unpacked zip was removed."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert not [p for p in scratch.iterdir() if p.name.startswith("mhp-image-zip-")], "unpacked zip left behind"


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
    return client.post(UPLOAD, {"file": SimpleUploadedFile(name, data, content_type="application/zip")})


def _assert_nothing_stored() -> None:
    assert not Image.objects.exists()
    assert not ImportJob.objects.exists()


def test_image_changelist_links_to_the_upload_page(admin_client):
    page = admin_client.get(reverse("admin:annotation_image_changelist")).content.decode()
    assert f'href="{UPLOAD}"' in page


def test_a_good_zip_imports_its_images_and_shows_the_report(admin_client, prompt):
    data = _zip(
        {"img/a.png": _image_bytes("PNG", seed=1), "img/b.webp": _image_bytes("WEBP", seed=2)},
        manifest=[_line(prompt, "img/a.png", seed=5, settings={"steps": 20}), _line(prompt, "img/b.webp")],
    )
    response = _upload(admin_client, data)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:annotation_image_zip_report", args=[job.pk])
    images = {image.source_path: image for image in Image.objects.select_related("generator")}
    assert sorted(images) == ["img/a.png", "img/b.webp"]
    assert (images["img/a.png"].seed, images["img/a.png"].settings, images["img/a.png"].width) == (5, {"steps": 20}, 64)
    assert {image.generator.name for image in images.values()} == {"zip-gen"}
    assert images["img/a.png"].file.read() == _image_bytes("PNG", seed=1)
    assert (job.kind, job.status, job.original_name) == (ImportKind.IMAGES, "succeeded", "batch.zip")
    assert job.summary["imported"] == 2 and job.summary["refused"] == 0
    report = admin_client.get(response.url).content.decode()
    assert "<th>imported</th><td>2</td>" in report and "zip-gen" in report


def test_a_corrupt_image_is_reported_and_the_good_ones_kept(admin_client, prompt):
    data = _zip(
        {"a.png": _image_bytes("PNG", seed=3), "bad.png": _corrupted(_image_bytes("PNG", seed=4))},
        manifest=[_line(prompt, "a.png"), _line(prompt, "bad.png"), _line(prompt, "missing.png")],
    )
    response = _upload(admin_client, data)
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
def test_an_unusable_zip_is_refused_with_its_reason_and_nothing_stored(admin_client, prompt, data, message, tmp_path):
    response = _upload(admin_client, data)
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    _assert_nothing_stored()
    assert not (tmp_path / "evil.png").exists()


def test_a_zip_with_damaged_data_is_refused_before_any_image_is_stored(admin_client, prompt):
    good = _image_bytes("PNG", seed=6)
    data = bytearray(_zip({"a.png": good, "b.png": _image_bytes("PNG", seed=7)}, manifest=[_line(prompt, "a.png")]))
    # Damage b.png's compressed bytes (its CRC no longer matches) while a.png, listed first, is fine.
    start = data.index(b"b.png") + len("b.png") + 100
    data[start : start + 32] = bytes(32)
    response = _upload(admin_client, bytes(data))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "corrupt zip: Bad CRC-32 for file 'b.png'" in page
    _assert_nothing_stored()


def test_zip_bombs_are_refused_by_bytes_inflated_and_by_member_count(prompt):
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
    summary = images_import_zip(archive=io.BytesIO(data), name="batch.zip")
    assert (summary.imported, summary.manifest) == (1, "batch.zip: batch/manifest.jsonl")


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

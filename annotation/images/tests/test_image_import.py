import io
import json

import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from annotation.models import Generator, Image
from annotation.tests.factories import make_generator, make_prompt

pytestmark = pytest.mark.django_db


def _image_bytes(fmt: str, size=(64, 48), seed: int = 0) -> bytes:
    # Noise, so each image is distinct and compressed data is long enough to damage in the middle.
    image = PILImage.frombytes("RGB", size, bytes((seed * 31 + i * 7) % 251 for i in range(size[0] * size[1] * 3)))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _corrupted(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


@pytest.fixture
def batch(tmp_path, settings):
    settings.IMAGE_MAX_PIXELS = 100 * 100
    prompt = make_prompt("a lighthouse at dusk")
    make_generator("known-gen")
    files = {
        "good.png": _image_bytes("PNG", seed=1),
        "good.jpg": _image_bytes("JPEG", seed=2),
        "good.webp": _image_bytes("WEBP", seed=3),
        "corrupt.png": _corrupted(_image_bytes("PNG", seed=4)),
        "truncated.jpg": _image_bytes("JPEG", seed=5)[:400],
        "notes.png": b"these are my notes, not an image\n" * 20,
        "huge.png": _image_bytes("PNG", size=(200, 120), seed=6),
        "copy.png": _image_bytes("PNG", seed=1),
    }
    (tmp_path / "img").mkdir()
    for name, data in files.items():
        (tmp_path / "img" / name).write_bytes(data)
    rows = [
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/good.png", "seed": 7, "settings": {"steps": 30}},
        {"prompt": "a lighthouse at dusk", "generator": "new-gen", "path": "img/good.jpg"},
        {"prompt": str(prompt.pk), "generator": "new-gen", "path": "img/good.webp", "seed": 8},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/corrupt.png"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/truncated.jpg"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/notes.png"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/huge.png"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/copy.png"},
        {"prompt": "no such prompt", "generator": "known-gen", "path": "img/good.png"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "../outside.png"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/missing.png"},
        {"prompt": prompt.pk, "generator": "known-gen", "path": "img/good.png", "seed": "x"},
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(row) for row in rows) + "\nnot json\n", encoding="utf-8")
    (tmp_path / "outside.png").write_bytes(_image_bytes("PNG", seed=9))
    return manifest, prompt


def _run(manifest, root) -> str:
    out = io.StringIO()
    call_command("import_images", str(manifest), "--root", str(root), "--verbosity", "0", stdout=out)
    return out.getvalue()


def test_import_keeps_valid_images_and_refuses_the_rest_with_reasons(batch, tmp_path):
    manifest, prompt = batch
    report = _run(manifest, tmp_path)
    assert report.splitlines()[0] == f"{manifest}: 13 lines read, 3 imported, 1 duplicates, 9 refused otherwise"
    assert "new generators: new-gen" in report
    expected = {
        4: "corrupt or truncated image",
        5: "corrupt or truncated image",
        6: "not an image (unrecognised data)",
        7: "200x120 exceeds the limit of 10000 pixels",
        8: "duplicate of image",
        9: "unknown prompt 'no such prompt'",
        10: "path leaves the root folder",
        11: "file not found",
        12: "seed must be an integer",
        13: "not JSON",
    }
    for line, reason in expected.items():
        assert any(row.startswith(f"  line {line} ") and reason in row for row in report.splitlines()), line
    images = {image.source_path: image for image in Image.objects.select_related("generator")}
    assert set(images) == {"img/good.png", "img/good.jpg", "img/good.webp"}
    good = images["img/good.png"]
    assert (good.width, good.height, good.seed, good.settings, good.prompt) == (64, 48, 7, {"steps": 30}, prompt)
    assert good.file.name.endswith(".png") and good.thumbnail.name.endswith(".webp")
    assert images["img/good.jpg"].generator.name == "new-gen" and images["img/good.webp"].seed == 8
    assert Generator.objects.filter(name__in=["known-gen", "new-gen"]).count() == 2


def test_a_second_run_imports_nothing_twice(batch, tmp_path):
    manifest, _ = batch
    _run(manifest, tmp_path)
    report = _run(manifest, tmp_path)
    assert report.splitlines()[0] == f"{manifest}: 13 lines read, 0 imported, 4 duplicates, 9 refused otherwise"
    assert Image.objects.count() == 3

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
    call_command(
        "import_images", str(manifest), "--root", str(root), "--create-generators", "--verbosity", "0", stdout=out
    )
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


def _png_with_huge_text_chunk() -> bytes:
    """A valid PNG whose compressed text chunk inflates past Pillow's limit (Pillow refuses to read it)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), zip=True)
    image = PILImage.new("RGB", (8, 8), (10, 20, 30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def _stored_files(media) -> list[str]:
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file()) if media.exists() else []


def _manifest_run(tmp_path, lines: list[bytes]) -> str:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(b"\n".join(lines) + b"\n")
    return _run(manifest, tmp_path)


def _line(prompt, path="ok.png", generator="gen-a", **extra) -> bytes:
    return json.dumps({"prompt": prompt.pk, "generator": generator, "path": path, **extra}).encode()


BAD_LINES = {
    "seed-beyond-bigint": (lambda p: _line(p, seed=2**63), "seed must be an integer between -2^63 and 2^63-1"),
    "seed-bool": (lambda p: _line(p, seed=True), "seed must be an integer"),
    "nul-in-settings": (lambda p: _line(p, settings={"sampler": "ddim\u0000"}), "settings contains NUL characters"),
    "nul-in-settings-key": (lambda p: _line(p, settings={"a\u0000": 1}), "settings contains NUL characters"),
    "surrogate-in-settings": (
        lambda p: b'{"prompt": %d, "generator": "g", "path": "ok.png", "settings": {"s": "\\ud800"}}' % p.pk,
        "settings contains invalid Unicode (a lone surrogate)",
    ),
    "nan-in-settings": (lambda p: _line(p, settings={"cfg": float("nan")}), "settings holds NaN or Infinity"),
    "deep-settings": (
        lambda p: _line(p, settings=json.loads('{"a":' * 40 + "1" + "}" * 40)),
        "settings nested deeper than 32 levels",
    ),
    "nul-in-generator": (lambda p: _line(p, generator="sd\u0000xl"), "generator contains NUL characters"),
    "blank-generator": (lambda p: _line(p, generator="   "), "generator name is empty"),
    "long-generator": (lambda p: _line(p, generator="g" * 101), "generator is longer than 100 characters"),
    "generator-not-text": (lambda p: _line(p, generator=["sd"]), "generator must be text"),
    "unknown-prompt-id": (
        lambda p: _line(p).replace(b'"prompt": %d' % p.pk, b'"prompt": 9223372036854775808'),
        "unknown prompt '9223372036854775808'",
    ),
    "unknown-prompt-text": (
        lambda p: json.dumps({"prompt": "nothing like it", "generator": "g", "path": "ok.png"}).encode(),
        "unknown prompt 'nothing like it'",
    ),
    "nul-in-prompt-text": (
        lambda p: json.dumps({"prompt": "a\u0000b", "generator": "g", "path": "ok.png"}).encode(),
        "prompt contains NUL characters",
    ),
    "prompt-unicode-digits": (
        lambda p: json.dumps({"prompt": "\u00b2", "generator": "g", "path": "ok.png"}).encode(),
        "unknown prompt",
    ),
    "nul-in-path": (lambda p: _line(p, path="ok.png\u0000.txt"), "path contains NUL characters"),
    "invalid-utf8": (lambda p: _line(p).replace(b"gen-a", b"gen-\xff\xfe"), "not UTF-8 text (invalid start byte"),
    "deeply-nested-json": (lambda p: b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deeply"),
    "png-text-chunk-refused": (
        lambda p: _line(p, path="text-chunk.png"),
        "image metadata refused: Decompressed data too large",
    ),
}


@pytest.mark.parametrize("make_line", [case[0] for case in BAD_LINES.values()], ids=list(BAD_LINES))
def test_a_bad_line_is_refused_with_its_reason_and_the_rest_imported(tmp_path, media, make_line, request):
    prompt = make_prompt("a lighthouse at dusk")
    (tmp_path / "ok.png").write_bytes(_image_bytes("PNG", seed=11))
    (tmp_path / "after.png").write_bytes(_image_bytes("PNG", seed=12))
    (tmp_path / "text-chunk.png").write_bytes(_png_with_huge_text_chunk())
    reason = BAD_LINES[request.node.callspec.id][1]
    report = _manifest_run(tmp_path, [make_line(prompt), _line(prompt, path="after.png", generator="gen-after")])
    assert report.splitlines()[0].endswith("2 lines read, 1 imported, 0 duplicates, 1 refused otherwise")
    refusal = report.splitlines()[1:][-1]
    assert refusal.startswith("  line 1 ") and reason in refusal, refusal
    # Nothing of the refused line was stored: no image, no generator, no file.
    assert list(Image.objects.values_list("source_path", flat=True)) == ["after.png"]
    assert list(Generator.objects.values_list("name", flat=True)) == ["gen-after"]
    image = Image.objects.get()
    assert _stored_files(media) == sorted([image.file.name, image.thumbnail.name])


def test_a_generator_is_created_only_with_a_stored_image(tmp_path, media):
    prompt = make_prompt("a lighthouse at dusk")
    (tmp_path / "notes.png").write_bytes(b"not an image")
    report = _manifest_run(tmp_path, [_line(prompt, path="notes.png", generator="never-stored")])
    assert "not an image" in report and "new generators" not in report
    assert not Generator.objects.exists() and _stored_files(media) == []


def test_a_line_over_the_length_limit_is_refused_without_stopping(tmp_path, media, monkeypatch):
    from annotation.images.services import imports

    monkeypatch.setattr(imports, "MAX_LINE_BYTES", 200)
    prompt = make_prompt("a lighthouse at dusk")
    (tmp_path / "ok.png").write_bytes(_image_bytes("PNG", seed=13))
    report = _manifest_run(tmp_path, [_line(prompt, settings={"pad": "x" * 500}), _line(prompt)])
    assert report.splitlines()[0].endswith("2 lines read, 1 imported, 0 duplicates, 1 refused otherwise")
    assert "line 1 : the line is longer than 200 bytes" in report


@pytest.mark.postgres
def test_a_row_the_database_refuses_leaves_no_file_and_the_import_goes_on(tmp_path, media):
    """A refusal nobody foresaw, made real with a trigger: the line is refused, its files deleted."""
    from django.db import connection

    prompt = make_prompt("a lighthouse at dusk")
    (tmp_path / "ok.png").write_bytes(_image_bytes("PNG", seed=14))
    (tmp_path / "after.png").write_bytes(_image_bytes("PNG", seed=15))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_seed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.seed = 666 THEN RAISE EXCEPTION 'seed 666 refused'; END IF; RETURN NEW; END $$;"
            "CREATE TRIGGER test_refuse_seed BEFORE INSERT ON annotation_image "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse_seed();"
        )
    report = _manifest_run(tmp_path, [_line(prompt, seed=666), _line(prompt, path="after.png", generator="gen-b")])
    assert "line 1 ok.png: the database refused the line (ProgrammingError: seed 666 refused" in report
    image = Image.objects.get()
    assert (image.source_path, list(Generator.objects.values_list("name", flat=True))) == ("after.png", ["gen-b"])
    assert _stored_files(media) == sorted([image.file.name, image.thumbnail.name])


def test_an_unknown_generator_is_refused_unless_new_ones_are_allowed_and_a_close_name_is_called_out(tmp_path, media):
    from annotation.images.services.imports import images_import
    from annotation.models import Generator, Image

    prompt = make_prompt("a paper boat on a puddle")
    Generator.objects.create(name="SDXL-1.0")
    for name, seed in (("ok.png", 1), ("typo.png", 2), ("new.png", 3)):
        (tmp_path / name).write_bytes(_image_bytes("PNG", seed=seed))
    manifest = tmp_path / "manifest.jsonl"
    lines = [
        _line(prompt, "ok.png", "SDXL-1.0"),
        _line(prompt, "typo.png", "sdxl-1.0"),
        _line(prompt, "new.png", "DALL-E 3"),
    ]
    manifest.write_bytes(b"\n".join(lines) + b"\n")

    summary = images_import(manifest=manifest, root=tmp_path)
    assert (summary.imported, summary.refused) == (1, 2)
    reasons = {row["path"]: row["reason"] for row in summary.refused_lines}
    assert (
        reasons["typo.png"]
        == "no generator named 'sdxl-1.0' (did you mean 'SDXL-1.0'?); allow new generators to add it"
    )
    assert reasons["new.png"].startswith("no generator named 'DALL-E 3'; allow new")
    assert list(Generator.objects.values_list("name", flat=True)) == ["SDXL-1.0"]

    allowed = images_import(manifest=manifest, root=tmp_path, create_generators=True)
    assert allowed.imported == 2 and sorted(allowed.generators_created) == ["DALL-E 3", "sdxl-1.0"]
    assert allowed.generators_close == [{"name": "sdxl-1.0", "close_to": "SDXL-1.0"}]
    assert Image.objects.count() == 3

"""Import generated images from a JSONL manifest: one image a line, each decoded before it is accepted.

A manifest line: {"prompt": <prompt id or its exact text>, "generator": <name>, "path": <relative to
the root>, "seed": <int, optional>, "settings": <object, optional>}. Each line is imported on its own or
refused with its reason (not UTF-8, not JSON, a value the database cannot hold, an unknown prompt, a
file that is not an image...), and the import goes on: it never stops half-way. A line's generator
and image row are written in one transaction, so a generator exists only with an image of its own,
and an image's files only with its row.
"""

import difflib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.db import DatabaseError, transaction

from annotation.images.services.sources import FolderSource, ImageSource, ManifestLineError
from annotation.images.services.store import ImageRejected, image_store
from annotation.models import Generator, Image, Prompt
from annotation.prompts.services.store import MAX_PROMPT_LENGTH
from annotation.stored_text import BIGINT_MAX, bigint_problem, json_problem, text_problem

__all__ = ["ImageImportSummary", "ManifestLineError", "images_import", "images_import_from"]

# The report lists this many refused lines; the counts cover all of them.
MAX_REPORTED_REFUSALS = 200
# A manifest line longer than this is refused without being held in memory whole.
MAX_LINE_BYTES = 1024**2
MAX_GENERATOR_NAME = Generator._meta.get_field("name").max_length
MAX_SOURCE_PATH = Image._meta.get_field("source_path").max_length

Progress = Callable[[int, int], None]


@dataclass
class ImageImportSummary:
    manifest: str
    lines_read: int = 0
    imported: int = 0
    duplicates: int = 0
    refused: int = 0
    generators_created: list[str] = field(default_factory=list)
    # New generators whose name is close to an existing one ({"name", "close_to"}): a typo makes another model.
    generators_close: list[dict] = field(default_factory=list)
    refused_lines: list[dict] = field(default_factory=list)

    def refuse(self, line: int, path: str, reason: str) -> None:
        self.refused += 1
        if len(self.refused_lines) < MAX_REPORTED_REFUSALS:
            self.refused_lines.append({"line": line, "path": path, "reason": reason})


@dataclass(frozen=True)
class ManifestEntry:
    prompt: Prompt
    generator_name: str
    relative_path: str
    seed: int | None
    settings: dict


def images_import(
    *, manifest: Path, root: Path, progress: Progress | None = None, create_generators: bool = False
) -> ImageImportSummary:
    """Import a manifest on disk whose paths are relative to `root`."""
    return images_import_from(
        source=FolderSource(manifest, root), label=str(manifest), progress=progress, create_generators=create_generators
    )


def images_import_from(
    *, source: ImageSource, label: str, progress: Progress | None = None, create_generators: bool = False
) -> ImageImportSummary:
    """Import the manifest of `source` line by line. A line naming a generator that does not exist is refused
    unless `create_generators`; a new generator whose name is close to an existing one is called out."""
    summary = ImageImportSummary(manifest=label)
    with source.manifest() as stream:
        total = _line_count(stream)
    with source.manifest() as stream:
        for number, raw in enumerate(_bounded_lines(stream), start=1):
            if raw is None or raw.strip():
                summary.lines_read += 1
                _import_line(number, raw, source, summary, create_generators)
            if progress:
                progress(number, total)
    return summary


def _line_count(stream: BinaryIO) -> int:
    count, last = 0, b"\n"
    while block := stream.read(1 << 20):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n")


def _bounded_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """The stream's lines, None for one longer than MAX_LINE_BYTES (skipped without being kept)."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
            pass
        yield None


def _import_line(
    number: int, raw: bytes | None, source: ImageSource, summary: ImageImportSummary, create_generators: bool
) -> None:
    row: dict = {}
    try:
        row = _decoded_row(raw, first=number == 1)
        entry = _entry(row)
        data = source.image_bytes(entry.relative_path)
        known = Image.objects.filter(sha256=hashlib.sha256(data).hexdigest()).values_list("pk", flat=True).first()
        if known is not None:
            summary.duplicates += 1
            summary.refuse(number, entry.relative_path, f"duplicate of image {known} (same sha256)")
            return
        _store(entry, data, number, summary, create_generators)
    except (ManifestLineError, ImageRejected) as error:
        summary.refuse(number, _named_path(row), str(error))
    except DatabaseError as error:
        # Every value was checked for what the database refuses; this is the net for what nobody foresaw.
        summary.refuse(number, _named_path(row), f"the database refused the line ({type(error).__name__}: {error})")


def _store(
    entry: ManifestEntry, data: bytes, number: int, summary: ImageImportSummary, create_generators: bool
) -> None:
    name = entry.generator_name
    exists = Generator.objects.filter(name=name).exists()
    close = None if exists else _close_generator_name(name)
    if not exists and not create_generators:
        hint = f" (did you mean {close!r}?)" if close else ""
        raise ManifestLineError(f"no generator named {name!r}{hint}; allow new generators to add it")
    # One transaction: a generator created here is rolled back with its refused or duplicate image.
    with transaction.atomic():
        generator, created = Generator.objects.get_or_create(name=name)
        image, stored = image_store(
            prompt=entry.prompt,
            generator=generator,
            data=data,
            seed=entry.seed,
            generation_settings=entry.settings,
            source_path=entry.relative_path,
        )
        if not stored:
            # Another import stored the same bytes a moment ago.
            transaction.set_rollback(True)
    if not stored:
        summary.duplicates += 1
        summary.refuse(number, entry.relative_path, f"duplicate of image {image.pk} (same sha256)")
        return
    summary.imported += 1
    if created:
        summary.generators_created.append(name)
        if close is not None:
            summary.generators_close.append({"name": name, "close_to": close})


def _close_generator_name(name: str) -> str | None:
    """An existing generator's name that `name` is probably a typo of: equal but for case, or one edit or so."""
    names = list(Generator.objects.values_list("name", flat=True))
    same_letters = [known for known in names if known.casefold() == name.casefold()]
    return (same_letters or difflib.get_close_matches(name, names, n=1, cutoff=0.8) or [None])[0]


def _named_path(row: dict) -> str:
    """The path a refused line names, when it names one, so the report says which file it was."""
    path = row.get("path")
    return path[:MAX_SOURCE_PATH] if isinstance(path, str) and not text_problem(path) else ""


def _decoded_row(raw: bytes | None, *, first: bool) -> dict:
    if raw is None:
        raise ManifestLineError(f"the line is longer than {MAX_LINE_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        raise ManifestLineError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestLineError(f"not JSON: {error.msg}") from None
    except ValueError as error:
        # An integer of more than 4,300 digits (Python's limit on int parsing).
        raise ManifestLineError(f"not JSON: {error}") from None
    except RecursionError:
        raise ManifestLineError("not JSON: nested too deeply") from None
    if not isinstance(row, dict):
        raise ManifestLineError("a line must be a JSON object")
    return row


def _entry(row: dict) -> ManifestEntry:
    missing = [key for key in ("prompt", "generator", "path") if row.get(key) in (None, "")]
    if missing:
        raise ManifestLineError(f"missing {', '.join(missing)}")
    seed, settings = row.get("seed"), row.get("settings")
    if seed is not None and (problem := bigint_problem(seed)):
        raise ManifestLineError(f"seed {problem}")
    if settings is not None and not isinstance(settings, dict):
        raise ManifestLineError("settings must be an object")
    if problem := json_problem(settings):
        raise ManifestLineError(f"settings {problem}")
    return ManifestEntry(
        prompt=_prompt(row["prompt"]),
        generator_name=_generator_name(row["generator"]),
        relative_path=_relative_path(row["path"]),
        seed=seed,
        settings=settings or {},
    )


def _checked_text(name: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise ManifestLineError(f"{name} must be text")
    if problem := text_problem(value):
        raise ManifestLineError(f"{name} {problem}")
    if len(value) > max_length:
        raise ManifestLineError(f"{name} is longer than {max_length} characters")
    return value


def _generator_name(value: object) -> str:
    name = _checked_text("generator", value, MAX_GENERATOR_NAME).strip()
    if not name:
        raise ManifestLineError("generator name is empty")
    return name


def _relative_path(value: object) -> str:
    return _checked_text("path", value, MAX_SOURCE_PATH)


def _prompt(reference: object) -> Prompt:
    # An integer (or a string of ASCII digits) is an id; any other string is the prompt's exact text.
    if isinstance(reference, str) and reference.isascii() and reference.isdigit():
        reference = int(reference)
    if isinstance(reference, int) and not isinstance(reference, bool):
        prompt = Prompt.objects.filter(pk=reference).first() if 0 < reference <= BIGINT_MAX else None
    elif isinstance(reference, str):
        text = _checked_text("prompt", reference, MAX_PROMPT_LENGTH * 2).strip()
        prompt = Prompt.objects.filter(text=text).first()
    else:
        raise ManifestLineError("prompt must be a prompt id or the prompt's exact text")
    if prompt is None:
        raise ManifestLineError(f"unknown prompt {str(reference)[:80]!r}")
    return prompt

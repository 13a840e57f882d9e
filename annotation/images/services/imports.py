"""Import generated images from a JSONL manifest: one image a line, each decoded before it is accepted.

A manifest line: {"prompt": <prompt id or its exact text>, "generator": <name>, "path": <relative to
the root>, "seed": <int, optional>, "settings": <object, optional>}. A refused line never stops the
import: it is reported with its reason, and the valid lines are kept.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from annotation.images.services.store import ImageRejected, image_store
from annotation.models import Generator, Image, Prompt

# The report lists this many refused lines; the counts cover all of them.
MAX_REPORTED_REFUSALS = 200


class ManifestLineError(ValueError):
    """A manifest line is unusable; the message says why."""


@dataclass
class ImageImportSummary:
    manifest: str
    lines_read: int = 0
    imported: int = 0
    duplicates: int = 0
    refused: int = 0
    generators_created: list[str] = field(default_factory=list)
    refused_lines: list[dict] = field(default_factory=list)

    def refuse(self, line: int, path: str, reason: str) -> None:
        self.refused += 1
        if len(self.refused_lines) < MAX_REPORTED_REFUSALS:
            self.refused_lines.append({"line": line, "path": path, "reason": reason})


@dataclass(frozen=True)
class ManifestEntry:
    prompt: Prompt
    generator_name: str
    path: Path
    relative_path: str
    seed: int | None
    settings: dict


def images_import(
    *, manifest: Path, root: Path, progress: Callable[[int, int], None] | None = None
) -> ImageImportSummary:
    summary = ImageImportSummary(manifest=str(manifest))
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            summary.lines_read += 1
            _import_line(number, line, root.resolve(), summary)
        if progress:
            progress(number, len(lines))
    return summary


def _import_line(number: int, line: str, root: Path, summary: ImageImportSummary) -> None:
    relative = ""
    try:
        entry = _parse_line(line, root)
        relative = entry.relative_path
        data = entry.path.read_bytes()
        known = Image.objects.filter(sha256=hashlib.sha256(data).hexdigest()).values_list("pk", flat=True).first()
        if known is not None:
            summary.duplicates += 1
            summary.refuse(number, relative, f"duplicate of image {known} (same sha256)")
            return
        generator = _generator(entry.generator_name, summary)
        image_store(
            prompt=entry.prompt,
            generator=generator,
            data=data,
            seed=entry.seed,
            generation_settings=entry.settings,
            source_path=relative,
        )
        summary.imported += 1
    except (ManifestLineError, ImageRejected) as error:
        summary.refuse(number, relative or _named_path(line), str(error))


def _named_path(line: str) -> str:
    """The path a refused line names, when it names one, so the report says which file it was."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return ""
    return str(row.get("path") or "") if isinstance(row, dict) else ""


def _generator(name: str, summary: ImageImportSummary) -> Generator:
    generator, created = Generator.objects.get_or_create(name=name)
    if created:
        summary.generators_created.append(name)
    return generator


def _parse_line(line: str, root: Path) -> ManifestEntry:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ManifestLineError(f"not JSON: {error.msg}") from None
    if not isinstance(row, dict):
        raise ManifestLineError("a line must be a JSON object")
    missing = [key for key in ("prompt", "generator", "path") if not row.get(key)]
    if missing:
        raise ManifestLineError(f"missing {', '.join(missing)}")
    seed, settings = row.get("seed"), row.get("settings") or {}
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ManifestLineError("seed must be an integer")
    if not isinstance(settings, dict):
        raise ManifestLineError("settings must be an object")
    relative = str(row["path"])
    return ManifestEntry(
        prompt=_prompt(row["prompt"]),
        generator_name=str(row["generator"]).strip()[:100],
        path=_file_under(root, relative),
        relative_path=relative,
        seed=seed,
        settings=settings,
    )


def _prompt(reference: int | str) -> Prompt:
    # An integer (or a string of digits) is an id; anything else is the prompt's exact text.
    if isinstance(reference, int) or (isinstance(reference, str) and reference.isdigit()):
        prompt = Prompt.objects.filter(pk=int(reference)).first()
    else:
        prompt = Prompt.objects.filter(text=str(reference).strip()).first()
    if prompt is None:
        raise ManifestLineError(f"unknown prompt {str(reference)[:80]!r}")
    return prompt


def _file_under(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    # A manifest must not reach files outside its root (../../etc/passwd).
    if not path.is_relative_to(root):
        raise ManifestLineError("path leaves the root folder")
    if not path.is_file():
        raise ManifestLineError("file not found")
    return path

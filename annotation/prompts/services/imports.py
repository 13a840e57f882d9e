"""Import prompts from a file: validate each row, drop exact duplicates, store the rest, mark near-duplicates.

The file is streamed. Before anything is written, a first look proves it can be parsed (a file that
cannot be is refused) and counts the rows for progress: CSV and Parquet files, whose readers can fail
halfway, are read through once; JSONL and text files, whose readers report a bad line as an invalid
row and never fail halfway, only until one row parses, and their lines are counted as bytes. Then the
rows are imported in batches. Exact duplicates are found through the unique normalised hash in the
database, batch by batch, so memory does not grow with the file; each batch is stored with one lean
INSERT (see prompt_import_sql) and, should it break a constraint that another import raced into the
table, settled again row by row through the ORM.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from annotation.models import Category, Prompt
from annotation.prompts.normalize import normalize_prompt, prompt_hash
from annotation.prompts.services import import_sql as prompt_import_sql
from annotation.prompts.services.dedupe import prompt_near_duplicates_mark
from annotation.prompts.services.import_readers import ImportFileError, SourceRow, format_for_name, rows_read
from annotation.prompts.services.store import MAX_PROMPT_LENGTH
from annotation.stored_text import text_problem

__all__ = ["ImportFileError", "ImportSummary", "prompts_import"]

BATCH_SIZE = 2000  # rows stored per transaction (a SQLite commit is an fsync)
PROGRESS_EVERY = 1000
_LINE_COUNT_FORMATS = ("jsonl", "txt")
_UNPARSED = ("not JSON", "not a JSON", "not UTF-8")
# The report keeps the first invalid rows in full and only counts the rest, so it stays small.
MAX_REPORTED_INVALID_ROWS = 200
MAX_SOURCE_LENGTH = Prompt._meta.get_field("source").max_length
MAX_SOURCE_ID_LENGTH = Prompt._meta.get_field("source_id").max_length

ProgressCallback = Callable[[int, int], None]


@dataclass
class ImportSummary:
    file: str = ""
    format: str = ""
    rows_read: int = 0
    imported: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    invalid: int = 0
    invalid_by_reason: Counter = field(default_factory=Counter)
    invalid_rows: list[dict] = field(default_factory=list)
    # Prompts stored before this import that it found near-duplicates of: linked, left for a person.
    existing_flagged: list[dict] = field(default_factory=list)

    def invalid_add(self, line: int, reason: str) -> None:
        self.invalid += 1
        # Counted by the reason's kind ("unknown category 'x'" counts as "unknown category").
        self.invalid_by_reason[reason.split(" (")[0].split(" '")[0]] += 1
        if len(self.invalid_rows) < MAX_REPORTED_INVALID_ROWS:
            self.invalid_rows.append({"line": line, "reason": reason})

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "format": self.format,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "invalid": self.invalid,
            "invalid_by_reason": dict(self.invalid_by_reason),
            "invalid_rows": self.invalid_rows,
            "invalid_rows_truncated": self.invalid > len(self.invalid_rows),
            "existing_flagged": self.existing_flagged,
        }


@dataclass
class _Candidate:
    line: int
    text: str
    normalized: str
    digest: str
    source: str
    source_id: str
    category: Category | None
    subcategory: Category | None


@dataclass
class _Defaults:
    source: str
    category: Category | None
    categories: dict[str, Category]


def prompts_import(
    *,
    path: Path,
    file_format: str | None = None,
    source: str = "",
    category_slug: str = "",
    display_name: str = "",
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import the prompts of one file; raises ImportFileError (nothing imported) when it cannot be parsed."""
    file_format = file_format or format_for_name(display_name or path.name)
    defaults = _defaults(source=source, category_slug=category_slug)
    total = _parse_check(path, file_format)
    summary = ImportSummary(file=display_name or path.name, format=file_format)
    first_new_id = _import_rows(rows_read(path, file_format), defaults, summary, total, progress)
    if first_new_id is not None:
        result = prompt_near_duplicates_mark(reject_from_id=first_new_id)
        summary.near_duplicates = sum(1 for prompt_id in result.newly_marked if prompt_id >= first_new_id)
        older = [prompt_id for prompt_id in result.newly_marked if prompt_id < first_new_id]
        summary.existing_flagged = _flagged_report(older, result.kept_of)
    return summary


def _flagged_report(prompt_ids: list[int], kept_of: dict[int, int]) -> list[dict]:
    """Existing prompts this import flagged as near-duplicates, with what they matched (left pending)."""
    shown = prompt_ids[:MAX_REPORTED_INVALID_ROWS]
    texts = dict(Prompt.objects.filter(pk__in={*shown, *(kept_of[i] for i in shown)}).values_list("pk", "text"))
    return [
        {"id": i, "text": texts.get(i, ""), "matched_id": kept_of[i], "matched_text": texts.get(kept_of[i], "")}
        for i in shown
    ]


def _defaults(*, source: str, category_slug: str) -> _Defaults:
    if len(source) > MAX_SOURCE_LENGTH:
        raise ImportFileError(f"the source name is longer than {MAX_SOURCE_LENGTH} characters")
    if problem := text_problem(source):
        raise ImportFileError(f"the source name {problem}")
    # Categories are a small, seeded table: one query, then a dictionary per row.
    categories = {category.slug: category for category in Category.objects.select_related("parent")}
    if category_slug and category_slug not in categories:
        raise ImportFileError(f"unknown category {category_slug!r}; known: {', '.join(sorted(categories))}")
    return _Defaults(source=source, category=categories.get(category_slug), categories=categories)


def _parse_check(path: Path, file_format: str) -> int:
    """Prove the file can be parsed, without writing; returns the row count or raises ImportFileError."""
    total = unparsed = 0
    for row in rows_read(path, file_format):
        total += 1
        if row.error.startswith(_UNPARSED):
            unparsed += 1
        elif file_format in _LINE_COUNT_FORMATS:
            # One row parses and the rest cannot make the reader fail: count the lines, don't parse them.
            return _line_count(path)
    if total == 0:
        raise ImportFileError("the file holds no rows")
    if unparsed == total:
        raise ImportFileError(f"no row of the file could be parsed as {file_format}")
    return total


def _line_count(path: Path) -> int:
    """Lines as the line readers yield them: a last line without a newline counts too."""
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _import_rows(
    rows: Iterator[SourceRow], defaults: _Defaults, summary: ImportSummary, total: int, progress
) -> int | None:
    """Returns the lowest id created, or None when nothing new was stored."""
    new_ids: list[int] = []
    batch: list[_Candidate] = []
    for row in rows:
        summary.rows_read += 1
        candidate = _candidate(row, defaults, summary)
        if candidate is not None:
            batch.append(candidate)
        if len(batch) >= BATCH_SIZE:
            new_ids.extend(filter(None, [_batch_store(batch, summary)]))
            batch = []
        if progress and summary.rows_read % PROGRESS_EVERY == 0:
            progress(summary.rows_read, total)
    new_ids.extend(filter(None, [_batch_store(batch, summary)]))
    if progress:
        progress(summary.rows_read, max(total, summary.rows_read))
    return min(new_ids, default=None)


def _candidate(row: SourceRow, defaults: _Defaults, summary: ImportSummary) -> _Candidate | None:
    reason = row.error or _text_problem(row.prompt)
    text = normalized = ""
    if not reason:
        text = row.prompt.strip()
        normalized = normalize_prompt(text)  # once per row: the hash and the emptiness check share it
        reason = ("empty" if not normalized else _length_problem(text)) or _field_problem(row)
    if reason:
        summary.invalid_add(row.line, reason)
        return None
    category_value = row.category if row.category not in (None, "") else None
    category = defaults.categories.get(category_value) if category_value is not None else defaults.category
    if category_value is not None and category is None:
        summary.invalid_add(row.line, f"unknown category {str(category_value)[:50]!r}")
        return None
    return _Candidate(
        line=row.line,
        text=text,
        normalized=normalized,
        digest=prompt_hash(normalized),
        source=str(row.source) if row.source not in (None, "") else defaults.source,
        source_id=str(row.source_id) if row.source_id is not None else "",
        category=category.parent if category and category.parent_id else category,
        subcategory=category if category and category.parent_id else None,
    )


def _text_problem(value: object) -> str:
    if value is None:
        return "empty"
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if problem := text_problem(value):
        return f"not text ({problem})"
    if not value.strip():
        return "empty"
    return ""


def _length_problem(text: str) -> str:
    if len(text) > MAX_PROMPT_LENGTH:
        return f"too long ({len(text)} characters, at most {MAX_PROMPT_LENGTH})"
    return ""


def _field_problem(row: SourceRow) -> str:
    for name, value, limit in (
        ("source", row.source, MAX_SOURCE_LENGTH),
        ("source_id", row.source_id, MAX_SOURCE_ID_LENGTH),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            return f"{name} is not text ({type(value).__name__})"
        if value is not None and len(str(value)) > limit:
            return f"{name} longer than {limit} characters"
        if isinstance(value, str) and (problem := text_problem(value)):
            # PostgreSQL refuses the whole batch's INSERT for one such value: refuse the row instead.
            return f"{name} {problem}"
    if row.category is not None and not isinstance(row.category, str):
        return f"category is not text ({type(row.category).__name__})"
    return ""


def _batch_store(batch: list[_Candidate], summary: ImportSummary) -> int | None:
    """Store one batch's new prompts; returns the lowest id created (None when all were known)."""
    if not batch:
        return None
    try:
        with transaction.atomic():
            return _batch_store_lean(batch, summary)
    except IntegrityError:
        # A row reuses a stored source id, or another import stored some rows meanwhile: the batch was
        # rolled back, its counts not added; settle it again the careful way.
        return _batch_store_careful(batch, summary)


def _batch_store_lean(batch: list[_Candidate], summary: ImportSummary) -> int | None:
    """One hash lookup and one INSERT. Source ids are checked against the batch only: a row reusing a
    stored one breaks the unique constraint, which rolls this back for the careful path, so the outcome
    is the careful path's."""
    known_hashes = prompt_import_sql.hashes_stored([candidate.digest for candidate in batch])
    taken_ids: set[tuple[str, str]] = set()
    fresh: list[_Candidate] = []
    exact = 0
    invalid: list[tuple[int, str]] = []
    for candidate in batch:
        key = (candidate.source, candidate.source_id)
        if candidate.digest in known_hashes:
            exact += 1
        elif candidate.source_id and key in taken_ids:
            invalid.append((candidate.line, _source_id_taken_reason(candidate)))
        else:
            fresh.append(candidate)
            known_hashes.add(candidate.digest)
            if candidate.source_id:
                taken_ids.add(key)
    template = _prompt_for(fresh[0]) if fresh else None
    created = prompt_import_sql.prompts_insert([_row_for(candidate) for candidate in fresh], template)
    # Rows skipped by ON CONFLICT on the hash were stored by another import meanwhile: exact duplicates.
    summary.exact_duplicates += exact + len(fresh) - len(created)
    for line, reason in invalid:
        summary.invalid_add(line, reason)
    summary.imported += len(created)
    return min(created, default=None)


def _row_for(candidate: _Candidate) -> tuple:
    """Values in prompt_import_sql.ROW_COLUMNS order."""
    return (
        candidate.text,
        candidate.normalized,
        candidate.digest,
        candidate.source,
        candidate.source_id,
        candidate.category.pk if candidate.category else None,
        candidate.subcategory.pk if candidate.subcategory else None,
    )


def _source_id_taken_reason(candidate: _Candidate) -> str:
    return f"source_id {candidate.source_id[:50]!r} already names another prompt"


def _batch_store_careful(batch: list[_Candidate], summary: ImportSummary) -> int | None:
    """The ORM path: stored source ids looked up, then bulk_create, or row by row if that still fails."""
    fresh = _batch_without_known(batch, summary)
    if not fresh:
        return None
    prompts = [_prompt_for(candidate) for candidate in fresh]
    try:
        with transaction.atomic():
            created = Prompt.objects.bulk_create(prompts)
    except IntegrityError:
        # Another import stored some of these meanwhile: settle them one by one.
        created = _rows_store_one_by_one(fresh, summary)
    summary.imported += len(created)
    return min((prompt.pk for prompt in created), default=None)


def _batch_without_known(batch: list[_Candidate], summary: ImportSummary) -> list[_Candidate]:
    """Drop exact duplicates (of stored prompts and inside the batch) and rows reusing a taken source id."""
    known_hashes = set(
        Prompt.objects.filter(normalized_hash__in={c.digest for c in batch}).values_list("normalized_hash", flat=True)
    )
    keyed = [(c.source, c.source_id) for c in batch if c.source_id]
    taken_ids = _source_ids_taken(keyed)
    fresh: list[_Candidate] = []
    for candidate in batch:
        key = (candidate.source, candidate.source_id)
        if candidate.digest in known_hashes:
            summary.exact_duplicates += 1
        elif candidate.source_id and key in taken_ids:
            summary.invalid_add(candidate.line, _source_id_taken_reason(candidate))
        else:
            fresh.append(candidate)
            known_hashes.add(candidate.digest)
            if candidate.source_id:
                taken_ids.add(key)
    return fresh


def _source_ids_taken(keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    if not keys:
        return set()
    # source_id <> '' lets the database use the partial unique index on (source, source_id).
    stored = Prompt.objects.exclude(source_id="").filter(
        source__in={k[0] for k in keys}, source_id__in={k[1] for k in keys}
    )
    return set(stored.values_list("source", "source_id")) & set(keys)


def _prompt_for(candidate: _Candidate) -> Prompt:
    return Prompt(
        text=candidate.text,
        normalized_text=candidate.normalized,
        normalized_hash=candidate.digest,
        source=candidate.source,
        source_id=candidate.source_id,
        category=candidate.category,
        subcategory=candidate.subcategory,
        reviews_required=settings.PROMPT_REVIEWS_REQUIRED,
    )


def _rows_store_one_by_one(fresh: list[_Candidate], summary: ImportSummary) -> list[Prompt]:
    created = []
    for candidate in fresh:
        try:
            prompt = _prompt_for(candidate)
            with transaction.atomic():
                prompt.save()
            created.append(prompt)
        except IntegrityError:
            if Prompt.objects.filter(normalized_hash=candidate.digest).exists():
                summary.exact_duplicates += 1
            else:
                summary.invalid_add(candidate.line, "source_id already names another prompt")
    return created

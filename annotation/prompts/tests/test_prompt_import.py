import csv
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Category, Prompt, PromptStatus
from annotation.prompts.services.imports import ImportFileError, prompts_import

pytestmark = pytest.mark.django_db

ROWS = [
    {
        "prompt": "a lighthouse on a cliff at dawn, oil painting",
        "source": "lab",
        "source_id": "1",
        "category": "scenes",
    },
    {"prompt": "a corgi wearing a tiny crown", "source": "lab", "source_id": "2"},
    {"prompt": "  A  LIGHTHOUSE on a cliff at dawn ,, oil painting.. ", "source": "lab", "source_id": "3"},
]


def _jsonl(tmp_path, lines, name="prompts.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def _assert_two_imported(summary):
    assert (summary.rows_read, summary.imported, summary.exact_duplicates, summary.invalid) == (3, 2, 1, 0)
    lighthouse = Prompt.objects.get(source_id="1")
    assert lighthouse.category.slug == "scenes" and lighthouse.status == PromptStatus.PENDING
    assert sorted(Prompt.objects.values_list("source_id", flat=True)) == ["1", "2"]


def test_jsonl_import_counts_and_fields(tmp_path):
    _assert_two_imported(prompts_import(path=_jsonl(tmp_path, ROWS)))


def test_csv_import(tmp_path):
    path = tmp_path / "prompts.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt", "source", "source_id", "category"])
        writer.writeheader()
        writer.writerows(ROWS)
    _assert_two_imported(prompts_import(path=path))


def test_parquet_import(tmp_path):
    path = tmp_path / "prompts.parquet"
    columns = {key: [row.get(key) for row in ROWS] for key in ("prompt", "source", "source_id", "category")}
    pq.write_table(pa.table(columns), path)
    _assert_two_imported(prompts_import(path=path))


def test_text_import_with_source_and_category_options(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red fox in the snow\nA red fox in the snow.\na bowl of ramen\n")
    call_command("import_prompts", str(path), "--source", "notes", "--category", "food", verbosity=0)
    prompts = Prompt.objects.order_by("id")
    assert [p.text for p in prompts] == ["a red fox in the snow", "a bowl of ramen"]
    assert {p.source for p in prompts} == {"notes"} and {p.category.slug for p in prompts} == {"food"}


def test_subcategory_slug_sets_category_and_subcategory(tmp_path):
    sub = Category.objects.filter(parent__slug="animals").first()
    prompts_import(path=_jsonl(tmp_path, [{"prompt": "an owl on a branch", "category": sub.slug}]))
    prompt = Prompt.objects.get()
    assert (prompt.category.slug, prompt.subcategory) == ("animals", sub)


def test_invalid_rows_are_reported_and_valid_rows_still_imported(tmp_path):
    lines = [
        {"prompt": "a valid prompt about a castle"},
        {"prompt": "   "},
        {"prompt": "x" * 2001},
        {"prompt": 42},
        "{not json",
        {"prompt": "a prompt with a made-up category", "category": "no-such-category"},
        ["a", "list"],
        {"prompt": "another valid prompt about a river"},
    ]
    summary = prompts_import(path=_jsonl(tmp_path, lines))
    assert (summary.rows_read, summary.imported, summary.invalid) == (8, 2, 6)
    assert [(row["line"], row["reason"].split(" (")[0]) for row in summary.invalid_rows] == [
        (2, "empty"),
        (3, "too long"),
        (4, "not text"),
        (5, "not JSON"),
        (6, "unknown category 'no-such-category'"),
        (7, "not a JSON object"),
    ]
    assert summary.as_dict()["invalid_by_reason"]["unknown category"] == 1
    assert Prompt.objects.count() == 2


def test_command_prints_the_report(tmp_path, capsys):
    path = _jsonl(tmp_path, [{"prompt": "a teapot"}, {"prompt": ""}])
    call_command("import_prompts", str(path), verbosity=0)
    out = capsys.readouterr().out
    assert "2 rows read, 1 imported, 0 exact duplicates, 0 near-duplicates, 1 invalid" in out
    assert "line 2: empty" in out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.jsonl", b"{nope\n[also not\n", "no row of the file could be parsed"),
        ("broken.csv", b"text,author\nhello,me\n", "no 'prompt' column"),
        ("broken.parquet", b"PAR1 this is not parquet at all", "not a readable Parquet file"),
        ("broken.txt", b"\x89PNG\r\n\x1a\n\0\0\0IHDR", "binary file"),
        ("empty.jsonl", b"", "holds no rows"),
    ],
)
def test_unparseable_file_is_refused_and_imports_nothing(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_prompts", str(path), verbosity=0)
    assert Prompt.objects.count() == 0


def test_csv_broken_halfway_imports_nothing(tmp_path):
    path = tmp_path / "half.csv"
    path.write_bytes(b"prompt\n" + b"a fine prompt number %d\n" * 1 + "caf\u00e9".encode("latin-1") + b"\n")
    with pytest.raises(ImportFileError, match="not UTF-8"):
        prompts_import(path=path)
    assert Prompt.objects.count() == 0


def test_unknown_category_option_is_refused(tmp_path):
    with pytest.raises(CommandError, match="unknown category"):
        call_command("import_prompts", str(_jsonl(tmp_path, ROWS)), "--category", "nope", verbosity=0)
    assert Prompt.objects.count() == 0


def test_reimport_imports_nothing_new(tmp_path):
    path = _jsonl(tmp_path, ROWS)
    prompts_import(path=path)
    before = list(Prompt.objects.values_list("id", "status", "near_duplicate_of"))
    again = prompts_import(path=path)
    assert (again.imported, again.exact_duplicates, again.near_duplicates, again.invalid) == (0, 3, 0, 0)
    assert list(Prompt.objects.values_list("id", "status", "near_duplicate_of")) == before


def test_reused_source_id_with_other_text_is_invalid(tmp_path):
    prompts_import(path=_jsonl(tmp_path, ROWS))
    summary = prompts_import(path=_jsonl(tmp_path, [{"prompt": "something else", "source": "lab", "source_id": "2"}]))
    assert (summary.imported, summary.invalid) == (0, 1)
    assert "already names another prompt" in summary.invalid_rows[0]["reason"]


def test_large_file_is_streamed_not_loaded(tmp_path):
    # 40 MB of rows: too long to import, so the import reads all of it and stores almost nothing.
    path = tmp_path / "large.jsonl"
    long_row = json.dumps({"prompt": "y" * 4000}) + "\n"
    with open(path, "w") as handle:
        handle.write(json.dumps({"prompt": "the one short prompt"}) + "\n")
        for _ in range(10_000):
            handle.write(long_row)
    assert path.stat().st_size > 40_000_000
    tracemalloc.start()
    try:
        summary = prompts_import(path=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (summary.rows_read, summary.imported, summary.invalid) == (10_001, 1, 10_000)
    assert len(summary.invalid_rows) == 200 and summary.as_dict()["invalid_rows_truncated"]
    assert peak < 5_000_000, f"peak {peak} bytes for a {path.stat().st_size} byte file"

"""A prompt file's bad rows are refused one by one, never failing the job with an error nobody can read."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import ImportJob, Prompt
from annotation.prompts.services.import_jobs import prompt_import_job_create
from annotation.prompts.services.imports import ImportFileError, prompts_import
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db

GOOD = json.dumps({"prompt": "a heron in the reeds at dawn", "source": "lab", "source_id": "ok-1"}).encode()

BAD_ROWS = {
    "nul-in-source-id": (
        json.dumps({"prompt": "a red kite", "source": "lab", "source_id": "id\u0000x"}).encode(),
        "source_id contains NUL characters",
    ),
    "nul-in-source": (
        json.dumps({"prompt": "a red kite", "source": "l\u0000ab"}).encode(),
        "source contains NUL characters",
    ),
    "nul-in-prompt": (json.dumps({"prompt": "a red\u0000kite"}).encode(), "not text (contains NUL characters)"),
    "surrogate-in-prompt": (b'{"prompt": "a red kite \\ud800"}', "not text (contains invalid Unicode"),
    "surrogate-in-source-id": (
        b'{"prompt": "a red kite", "source_id": "\\udfff"}',
        "source_id contains invalid Unicode (a lone surrogate)",
    ),
    "deeply-nested-line": (b"[" * 100_000 + b"]" * 100_000, "not JSON (nested too deeply)"),
    "nested-object-line": (b'{"prompt": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "not JSON (nested too deeply)"),
    "huge-integer": (b'{"prompt": "a red kite", "source_id": ' + b"9" * 5000 + b"}", "not JSON (Exceeds the limit"),
    "bool-source-id": (json.dumps({"prompt": "a red kite", "source_id": True}).encode(), "source_id is not text"),
    "list-category": (json.dumps({"prompt": "a red kite", "category": ["animals"]}).encode(), "category is not text"),
    "invalid-utf8": (b'{"prompt": "a red kite \xff"}', "not UTF-8 text"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_is_refused_and_the_job_succeeds_with_the_rest(
    case, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    line, reason = BAD_ROWS[case]
    upload = SimpleUploadedFile("prompts.jsonl", line + b"\n" + GOOD + b"\n")
    with django_capture_on_commit_callbacks(execute=True):
        job = prompt_import_job_create(upload=upload, created_by=None)
    job = ImportJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    summary = job.summary
    assert (summary["rows_read"], summary["imported"], summary["invalid"]) == (2, 1, 1)
    assert summary["invalid_rows"][0]["line"] == 1 and reason in summary["invalid_rows"][0]["reason"]
    assert list(Prompt.objects.values_list("source_id", flat=True)) == ["ok-1"]


def test_nul_in_a_csv_source_id_is_refused_on_its_row(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text("prompt,source,source_id\na red kite,lab,id\x00x\na heron in the reeds,lab,ok-1\n")
    summary = prompts_import(path=path)
    assert (summary.imported, summary.invalid, summary.invalid_rows[0]["line"]) == (1, 1, 2)
    assert summary.invalid_rows[0]["reason"] == "source_id contains NUL characters"
    assert list(Prompt.objects.values_list("source_id", flat=True)) == ["ok-1"]


def test_a_source_name_with_nul_refuses_the_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red kite\n")
    with pytest.raises(ImportFileError, match="the source name contains NUL characters"):
        prompts_import(path=path, source="lab\x00")
    assert not Prompt.objects.exists()

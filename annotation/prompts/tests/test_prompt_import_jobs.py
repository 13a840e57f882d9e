import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation import roles
from annotation.models import ImportJob, Prompt
from annotation.tests.factories import make_user
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db

UPLOAD_URL = "admin:annotation_importjob_prompt_upload"


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_admin_upload_runs_the_task_and_shows_the_report(client, django_capture_on_commit_callbacks):
    client.force_login(make_user(roles.ADMIN))
    lines = [json.dumps({"prompt": "a teapot shaped like a whale"}), json.dumps({"prompt": 7})]
    file = _upload("mine.jsonl", ("\n".join(lines) + "\n").encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse(UPLOAD_URL), {"file": file, "source": "upload", "category": "objects"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/{job.pk}/prompt-progress/")
    assert (job.status, job.progress, job.original_name) == (JobStatus.SUCCEEDED, 1.0, "mine.jsonl")
    assert (job.summary["imported"], job.summary["invalid"]) == (1, 1)
    prompt = Prompt.objects.get()
    assert (prompt.source, prompt.category.slug) == ("upload", "objects")
    page = client.get(response.url).content.decode()
    assert "Succeeded" in page and "not text (int)" in page and 'http-equiv="refresh"' not in page


def test_unparseable_upload_fails_the_job_with_its_reason(client, django_capture_on_commit_callbacks):
    client.force_login(make_user(roles.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse(UPLOAD_URL), {"file": _upload("bad.csv", b"title\nx\n")})
    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED and "no 'prompt' column" in job.error and job.summary == {}
    assert Prompt.objects.count() == 0


def test_unknown_file_type_is_refused_by_the_form(client):
    client.force_login(make_user(roles.ADMIN))
    response = client.post(reverse(UPLOAD_URL), {"file": _upload("prompts.docx", b"x")})
    assert response.status_code == 200 and "cannot tell the format" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_queued_job_page_refreshes_and_rerun_is_a_no_op(client, django_capture_on_commit_callbacks):
    from annotation.prompts.services.import_jobs import prompt_import_job_create, prompt_import_job_run

    admin = make_user(roles.ADMIN)
    job = prompt_import_job_create(upload=_upload("a.txt", b"a quiet harbour at night\n"), created_by=admin)
    client.force_login(admin)
    page = client.get(reverse("admin:annotation_importjob_prompt_progress", args=[job.pk])).content.decode()
    assert 'http-equiv="refresh"' in page and "Queued" in page
    assert prompt_import_job_run(job_id=job.pk).status == JobStatus.SUCCEEDED
    finished_at = ImportJob.objects.get().finished_at
    assert prompt_import_job_run(job_id=job.pk).finished_at == finished_at
    assert Prompt.objects.count() == 1


@pytest.mark.parametrize("role", [roles.ANNOTATOR, roles.REVIEWER])
def test_annotators_and_reviewers_cannot_reach_the_upload_page(client, role):
    client.force_login(make_user(role))
    for response in (
        client.get(reverse(UPLOAD_URL)),
        client.post(reverse(UPLOAD_URL), {"file": _upload("a.txt", b"x")}),
    ):
        assert response.status_code == 302 and "/admin/login/" in response.url
    assert ImportJob.objects.count() == 0


def test_staff_without_import_permission_gets_403(client):
    user = make_user()
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get(reverse(UPLOAD_URL)).status_code == 403


def test_an_unexpected_error_fails_the_job_and_a_retry_after_the_fix_completes(
    monkeypatch, django_capture_on_commit_callbacks
):
    from annotation.prompts.services import import_jobs

    def broken(**kwargs):
        raise KeyError("a bug nobody expected")

    monkeypatch.setattr(import_jobs, "prompts_import", broken)
    job = import_jobs.prompt_import_job_create(upload=_upload("a.txt", b"a quiet harbour at night\n"), created_by=None)
    job = import_jobs.prompt_import_job_run(job_id=job.pk)
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error.startswith("unexpected error (KeyError: 'a bug nobody expected')")
    assert Prompt.objects.count() == 0

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        import_jobs.prompt_import_job_retry(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.progress, job.summary["imported"]) == (JobStatus.SUCCEEDED, "", 1.0, 1)
    assert Prompt.objects.get().text == "a quiet harbour at night"

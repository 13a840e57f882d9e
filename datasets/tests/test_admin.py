import json

import pytest
from django.urls import reverse

from annotation.tests.factories import make_user
from datasets.models import DatasetStatus, DatasetVersion, ExportJob
from datasets.tests.factories import JudgedPairs
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(role="admin"))
    return client


@pytest.fixture
def judged_pairs():
    judged = JudgedPairs(annotators=3)
    for category in ("animals", "food", "arts", "scenes"):
        for pair in judged.prompt_pairs(2, category=category):
            judged.judge_all(pair, ["first", "second", "first"])


def test_freeze_page_export_button_progress_and_downloads(
    admin_client, judged_pairs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:datasets_datasetversion_freeze"),
            {"name": "web-v1", "labels": "soft", "val": "2", "test": "0.25", "seed": "3", "description": ""},
        )
    version = DatasetVersion.objects.get(name="web-v1")
    assert response.status_code == 302
    assert version.status == DatasetStatus.FROZEN
    assert version.config["mode"] == "soft" and version.config["val"] == 2 and version.config["test"] == 0.25
    assert version.stats["splits"] == {"test": 2, "train": 4, "val": 2}

    page = admin_client.get(reverse("admin:datasets_datasetversion_change", args=[version.pk])).content.decode()
    assert 'id="counts-splits"' in page and 'id="counts-generators"' in page and 'id="export-button"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:datasets_datasetversion_export", args=[version.pk]),
            {"formats": ["jsonl", "webdataset"], "shard_size": "3"},
        )
    job = ExportJob.objects.get()
    assert response.url == reverse("admin:datasets_exportjob_progress", args=[job.pk])
    assert job.status == JobStatus.SUCCEEDED and job.progress == 1.0

    page = admin_client.get(response.url).content.decode()
    assert 'value="100"' in page and "pairs.jsonl" in page
    manifest_url = reverse("datasets:export_file", args=[job.pk, "manifest.json"])
    assert manifest_url in page
    manifest = json.loads(b"".join(admin_client.get(manifest_url).streaming_content))
    assert manifest["counts"]["pairs"] == 8
    download = admin_client.get(reverse("datasets:export_file", args=[job.pk, "pairs.jsonl"]))
    assert len(b"".join(download.streaming_content).splitlines()) == 8
    assert admin_client.get(reverse("datasets:export_file", args=[job.pk, "../../etc/passwd"])).status_code == 404


def test_refused_freeze_and_downloads_for_others_change_nothing(admin_client, client, judged_pairs):
    DatasetVersion.objects.create(name="taken", status=DatasetStatus.DRAFT)
    response = admin_client.post(
        reverse("admin:datasets_datasetversion_freeze"), {"name": "taken", "labels": "majority", "seed": "0"}
    )
    assert response.status_code == 400 and "already exists" in response.content.decode()
    response = admin_client.post(
        reverse("admin:datasets_datasetversion_freeze"),
        {"name": "bad", "labels": "majority", "seed": "0", "val": "2.5"},
    )
    assert "must be at least 0 and below 1" in response.content.decode()
    assert list(DatasetVersion.objects.values_list("name", "status")) == [("taken", "draft")]

    job = ExportJob.objects.create(
        version=DatasetVersion.objects.get(), status=JobStatus.SUCCEEDED, manifest={"files": []}, output_dir="/tmp"
    )
    url = reverse("datasets:export_file", args=[job.pk, "manifest.json"])
    client.force_login(make_user(role="annotator"))
    assert client.get(url).status_code == 302  # to the admin login: staff only


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("val", "2.5", "split fraction '2.5' must be at least 0 and below 1"),
        ("test", "-3", "split count '-3' must not be negative"),
        ("val", "many", "split size 'many' is neither a count (10000) nor a fraction (0.05)"),
        ("min_agreement", "1.5", "min_agreement 1.5 is not between 0 and 1"),
    ],
)
def test_the_freeze_page_and_the_command_refuse_the_same_input_with_the_same_message(
    admin_client, field, value, message
):
    from django.core.management import CommandError, call_command
    from django.utils.html import escape

    page = admin_client.post(
        reverse("admin:datasets_datasetversion_freeze"),
        {"name": "bad", "labels": "majority", "seed": "0", field: value},
    )
    assert page.status_code == 400 and escape(message) in page.content.decode()
    with pytest.raises(CommandError) as refused:
        call_command("freeze_dataset", "bad", f"--{field.replace('_', '-')}={value}", verbosity=0)
    assert str(refused.value) == message
    assert not DatasetVersion.objects.exists()

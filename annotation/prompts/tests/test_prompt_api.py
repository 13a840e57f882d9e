"""The prompt pipeline's API and the role boundaries of its API endpoints and admin pages."""

import pytest

from annotation import roles
from annotation.models import AugmentationJob, Category, ImportJob, ImportKind, Prompt
from annotation.prompts.services.store import prompt_accept, prompt_get_or_create
from annotation.tests.factories import make_prompt, make_user
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db

API = "/api/prompts/"


@pytest.fixture
def prompts():
    animals = Category.objects.get(slug="animals")
    fox = make_prompt("a red fox asleep in the snow")
    prompt_accept(prompt=fox, category=animals)
    make_prompt("a teapot shaped like a whale")
    owl, _ = prompt_get_or_create(text="an owl reading by candlelight", source="llm", origin="augmented")
    return fox, owl


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_reviewer_lists_and_filters_prompts(client, prompts):
    fox, owl = prompts
    client.force_login(make_user(roles.REVIEWER))
    assert len(_ids(client.get(API))) == 3
    assert _ids(client.get(API, {"status": "accepted"})) == [fox.pk]
    assert _ids(client.get(API, {"category": "animals"})) == [fox.pk]
    assert _ids(client.get(API, {"origin": "augmented"})) == [owl.pk]
    assert _ids(client.get(API, {"source": "llm"})) == [owl.pk]
    assert _ids(client.get(API, {"search": "CANDLE"})) == [owl.pk]
    assert client.get(API, {"status": "maybe"}).status_code == 400
    detail = client.get(f"{API}{fox.pk}/").json()
    assert (detail["text"], detail["category"], detail["status"], detail["origin"]) == (
        "a red fox asleep in the snow",
        "animals",
        "accepted",
        "collected",
    )


def test_staff_read_import_jobs_with_their_summary(client):
    job = ImportJob.objects.create(
        kind=ImportKind.PROMPTS,
        original_name="a.jsonl",
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        summary={"imported": 3, "exact_duplicates": 1},
    )
    ImportJob.objects.create(kind=ImportKind.IMAGES, original_name="images.jsonl")
    client.force_login(make_user(roles.ADMIN))
    listing = client.get(f"{API}import-jobs/").json()
    assert [row["id"] for row in listing["results"]] == [job.pk]
    detail = client.get(f"{API}import-jobs/{job.pk}/").json()
    assert (detail["status"], detail["progress"], detail["summary"]) == (
        "succeeded",
        1.0,
        {"imported": 3, "exact_duplicates": 1},
    )


def test_staff_start_augmentation_and_read_the_job(client, settings, django_capture_on_commit_callbacks):
    client.force_login(make_user(roles.ADMIN))
    body = {"category": "plants", "requested_count": 4}
    settings.OPENAI_API_KEY = ""  # every job would fail at once: refused, nothing queued
    refused = client.post(f"{API}augmentation-jobs/", body, content_type="application/json")
    assert refused.status_code == 400 and "OPENAI_API_KEY" in refused.json()["detail"]
    assert AugmentationJob.objects.count() == 0

    settings.OPENAI_API_KEY = "test-key"
    with django_capture_on_commit_callbacks(execute=False):  # queued; no LLM is asked here
        response = client.post(f"{API}augmentation-jobs/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    (created,) = response.json()["jobs"]
    assert (created["category"], created["requested_count"], created["llm_model"]) == ("plants", 4, "gpt-4o")
    detail = client.get(f"{API}augmentation-jobs/{created['id']}/").json()
    assert detail["status"] == "queued" and detail["generated_count"] == 0
    assert [row["id"] for row in client.get(f"{API}augmentation-jobs/").json()["results"]] == [created["id"]]


def test_an_invalid_augmentation_request_is_refused_and_creates_nothing(client):
    client.force_login(make_user(roles.ADMIN))
    for body in ({"category": "plants", "requested_count": 0}, {"category": "animals-birds", "requested_count": 2}):
        assert client.post(f"{API}augmentation-jobs/", body, content_type="application/json").status_code == 400
    assert AugmentationJob.objects.count() == 0


ADMIN_ONLY_PAGES = [
    "/admin/annotation/importjob/upload-prompts/",
    "/admin/annotation/augmentationjob/start/",
    "/admin/annotation/category/balance/",
]


def test_an_annotator_gets_403_on_admin_endpoints_and_pages(client, prompts):
    fox, _ = prompts
    job = ImportJob.objects.create(kind=ImportKind.PROMPTS, original_name="a.jsonl")
    client.force_login(make_user(roles.ANNOTATOR))
    for url in (
        API,
        f"{API}{fox.pk}/",
        f"{API}import-jobs/",
        f"{API}import-jobs/{job.pk}/",
        f"{API}augmentation-jobs/",
    ):
        assert client.get(url).status_code == 403, url
    body = {"category": "plants", "requested_count": 4}
    assert client.post(f"{API}augmentation-jobs/", body, content_type="application/json").status_code == 403
    for url in ADMIN_ONLY_PAGES:
        response = client.get(url)  # the admin site sends non-staff users to its login page
        assert response.status_code == 302 and "/admin/login/" in response.url, url
    assert client.post(ADMIN_ONLY_PAGES[1], {"requested_count": 4, "llm_model": "m"}).status_code == 302
    assert AugmentationJob.objects.count() == 0 and Prompt.objects.count() == 3


def test_a_reviewer_reads_prompts_but_gets_403_on_job_endpoints(client):
    client.force_login(make_user(roles.REVIEWER))
    assert client.get(f"{API}import-jobs/").status_code == 403
    assert client.get(f"{API}augmentation-jobs/").status_code == 403


def test_staff_without_the_model_permission_get_403(client):
    user = make_user()
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get(f"{API}augmentation-jobs/").status_code == 403
    assert client.get("/admin/annotation/augmentationjob/start/").status_code == 403
    assert client.get("/admin/annotation/category/balance/").status_code == 403


def test_the_endpoints_are_in_the_openapi_schema(client):
    client.force_login(make_user(roles.ADMIN))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/api/prompts/",
        "/api/prompts/{id}/",
        "/api/prompts/import-jobs/",
        "/api/prompts/import-jobs/{id}/",
        "/api/prompts/augmentation-jobs/",
        "/api/prompts/augmentation-jobs/{id}/",
    ):
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/api/prompts/augmentation-jobs/"]
    parameters = {p["name"] for p in schema["paths"]["/api/prompts/"]["get"]["parameters"]}
    assert {"status", "category", "origin", "source", "search"} <= parameters

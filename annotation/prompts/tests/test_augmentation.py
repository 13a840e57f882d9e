"""LLM augmentation through the real `openai` client against a scripted server on 127.0.0.1."""

import pytest

from annotation import roles
from annotation.models import AugmentationJob, Category, Prompt
from annotation.prompts import llm
from annotation.prompts.services import augmentation
from annotation.prompts.services.augmentation import augmentation_job_run, augmentation_jobs_create
from annotation.prompts.services.store import prompt_accept
from annotation.prompts.tests.augment_llm_server import ScriptedLLM, scripted_server_start
from annotation.tests.factories import make_prompt, make_user
from mhp.jobs import JobStatus

pytestmark = pytest.mark.django_db

START_URL = "/admin/annotation/augmentationjob/start/"
EXAMPLES = [
    "a barn owl gliding over a frozen lake at dawn, soft light",
    "portrait of a red panda in a tiny knitted scarf, studio lighting",
    "a herd of elephants crossing a river at sunset, national geographic",
]


@pytest.fixture
def llm_server(settings):
    """The scripted OpenAI-compatible server, with the project's OpenAI settings pointing at it."""
    llm_fake = ScriptedLLM()
    server, thread = scripted_server_start(llm_fake)
    settings.OPENAI_BASE_URL = llm_fake.base_url
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_TIMEOUT_SECONDS = 5.0
    yield llm_fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(llm, "RETRY_BASE_DELAY", 0.01)


@pytest.fixture
def animals() -> Category:
    category = Category.objects.get(slug="animals")
    for text in EXAMPLES:
        prompt_accept(prompt=make_prompt(text), category=category)
    return category


def _job(category: Category, count: int, model: str = "test-model") -> AugmentationJob:
    (job,) = augmentation_jobs_create(category=category, requested_count=count, llm_model=model, created_by=None)
    return job


def _counts(job: AugmentationJob) -> tuple:
    job.refresh_from_db()
    return (job.status, job.generated_count, job.kept_count, job.duplicate_count, job.malformed_count)


def test_a_run_stores_augmented_pending_prompts_in_batches(llm_server, animals, monkeypatch):
    monkeypatch.setattr(augmentation, "BATCH_SIZE", 3)
    first = ["a snow leopard on a cliff ledge, telephoto", "two otters holding hands", "a kingfisher diving, 1/8000 s"]
    llm_server.answer({"prompts": first}, prompt_tokens=100, completion_tokens=40)
    llm_server.answer({"prompts": ["a moose in morning fog", "a chameleon on a neon sign"]}, prompt_tokens=90)
    job = augmentation_job_run(job_id=_job(animals, 5).pk)

    assert _counts(job) == (JobStatus.SUCCEEDED, 5, 5, 0, 0)
    assert (job.prompt_tokens, job.completion_tokens, job.tokens_used, job.progress, job.error) == (
        190,
        60,
        250,
        1.0,
        "",
    )
    stored = Prompt.objects.filter(augmentation_job=job).order_by("id")
    assert [p.text for p in stored] == [*first, "a moose in morning fog", "a chameleon on a neon sign"]
    assert {(p.origin, p.status, p.category_id, p.source) for p in stored} == {
        ("augmented", "pending", animals.pk, "augmentation")
    }
    assert len(llm_server.requests) == 2
    request = llm_server.requests[0]
    assert request["model"] == "test-model" and request["response_format"] == {"type": "json_object"}
    assert '{"prompts": [' in request["messages"][0]["content"] and "3 strings" in request["messages"][0]["content"]
    assert all(text in llm_server.user_messages[0] for text in EXAMPLES)
    assert "Category: Animals" in llm_server.user_messages[0] and "Write 2 new" in llm_server.user_messages[1]
    assert llm_server.headers[0]["authorization"] == "Bearer sk-test-key"


def test_a_rate_limit_is_retried_then_the_answer_is_used(llm_server, animals):
    llm_server.fail(429)
    llm_server.answer({"prompts": ["a fox kit peeking out of its den"]}, prompt_tokens=7, completion_tokens=3)
    job = augmentation_job_run(job_id=_job(animals, 1).pk)
    assert _counts(job) == (JobStatus.SUCCEEDED, 1, 1, 0, 0)
    assert (job.prompt_tokens, job.completion_tokens, len(llm_server.requests)) == (7, 3, 2)


def test_server_errors_past_the_attempt_cap_fail_the_job_and_store_nothing(llm_server, animals, monkeypatch):
    monkeypatch.setattr(llm, "MAX_ATTEMPTS", 3)
    for _ in range(3):
        llm_server.fail(500, "upstream exploded")
    job = augmentation_job_run(job_id=_job(animals, 2).pk)
    assert _counts(job) == (JobStatus.FAILED, 0, 0, 0, 0)
    assert "InternalServerError (HTTP 500)" in job.error and "gave up after 3 attempts" in job.error
    assert len(llm_server.requests) == 3 and Prompt.objects.count() == len(EXAMPLES)


def test_malformed_answers_are_counted_and_never_stored(llm_server, animals):
    llm_server.answer("here are your prompts: 1. a cat")
    llm_server.answer({"ideas": ["a cat"]})
    llm_server.answer({"prompts": [7, "a copper kettle shaped like a tortoise", None]})
    job = augmentation_job_run(job_id=_job(animals, 2).pk)

    assert _counts(job) == (JobStatus.SUCCEEDED, 2, 1, 0, 3)
    assert "malformed answer 1: not JSON" in job.error
    assert 'malformed answer 2: no "prompts" list in the JSON object (keys: ideas)' in job.error
    assert "malformed answer 3, item 1: not a string (int)" in job.error
    assert "stopped after 3 requests with 1 of 2 prompts" in job.error
    assert list(Prompt.objects.filter(augmentation_job=job).values_list("text", flat=True)) == [
        "a copper kettle shaped like a tortoise"
    ]
    assert Prompt.objects.count() == len(EXAMPLES) + 1


def test_exact_duplicates_of_stored_and_generated_prompts_are_dropped(llm_server, animals):
    llm_server.answer({"prompts": ["A barn owl gliding over a frozen lake at dawn ,, soft light.", "an ibis at dusk"]})
    llm_server.answer({"prompts": ["An ibis at dusk."]})
    llm_server.answer({"prompts": ["a lantern fish in the deep sea"]})
    job = augmentation_job_run(job_id=_job(animals, 2).pk)
    assert _counts(job) == (JobStatus.SUCCEEDED, 4, 2, 2, 0)
    assert sorted(Prompt.objects.filter(augmentation_job=job).values_list("text", flat=True)) == [
        "a lantern fish in the deep sea",
        "an ibis at dusk",
    ]
    assert Prompt.objects.count() == len(EXAMPLES) + 2


def test_a_near_duplicate_is_rejected_as_a_duplicate_and_not_kept(llm_server, animals):
    near = "a barn owl gliding over a frozen lake at dusk, soft light"
    llm_server.answer({"prompts": [near, "a pangolin curled up on mossy stones"]})
    job = augmentation_job_run(job_id=_job(animals, 2).pk)
    assert _counts(job) == (JobStatus.SUCCEEDED, 2, 1, 1, 0) and job.metrics == {"near_duplicates": 1}
    marked = Prompt.objects.get(text=near)
    assert (marked.status, marked.rejection_reasons, marked.near_duplicate_of.text) == (
        "rejected",
        ["duplicate"],
        EXAMPLES[0],
    )


def test_without_a_key_nothing_is_queued_and_a_job_that_lost_its_key_fails_saying_how_to_set_one(
    llm_server, animals, settings
):
    from django.core.exceptions import ValidationError

    settings.OPENAI_API_KEY = ""
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        _job(animals, 3)
    assert AugmentationJob.objects.count() == 0
    settings.OPENAI_API_KEY = "test-key"
    job = _job(animals, 3)
    settings.OPENAI_API_KEY = ""  # removed between the queueing and the run
    job = augmentation_job_run(job_id=job.pk)
    assert _counts(job) == (JobStatus.FAILED, 0, 0, 0, 0)
    assert job.error == llm.MISSING_KEY_MESSAGE and "OPENAI_API_KEY" in job.error and "OPENAI_BASE_URL" in job.error
    assert (job.prompt_tokens, job.progress, llm_server.requests, Prompt.objects.count()) == (0, 0.0, [], 3)


def test_running_a_finished_job_again_changes_nothing(llm_server, animals):
    llm_server.answer({"prompts": ["a gecko on a windowpane at night"]})
    job = augmentation_job_run(job_id=_job(animals, 1).pk)
    again = augmentation_job_run(job_id=job.pk)
    assert (again.finished_at, again.kept_count, len(llm_server.requests)) == (job.finished_at, 1, 1)
    assert Prompt.objects.count() == len(EXAMPLES) + 1


def test_the_task_is_queued_on_commit_and_takes_the_job_id(llm_server, animals, django_capture_on_commit_callbacks):
    llm_server.answer({"prompts": ["a hummingbird sipping from a fuchsia"]})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = _job(animals, 1)
    assert len(callbacks) == 1 and AugmentationJob.objects.get().status == JobStatus.QUEUED
    callbacks[0]()
    assert _counts(job) == (JobStatus.SUCCEEDED, 1, 1, 0, 0)


@pytest.mark.parametrize("count", [0, 1001])
def test_a_count_out_of_range_is_refused_and_creates_no_job(animals, count):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        augmentation_jobs_create(category=animals, requested_count=count, llm_model="m", created_by=make_user())
    assert AugmentationJob.objects.count() == 0


def test_admin_start_page_runs_a_job_and_the_list_shows_its_figures(
    client, llm_server, animals, django_capture_on_commit_callbacks
):
    client.force_login(make_user(roles.ADMIN))
    page = client.get(START_URL).content.decode()
    assert "OPENAI_API_KEY" not in page  # a key is configured: no how-to
    llm_server.answer({"prompts": ["a tree frog under a leaf umbrella"]}, prompt_tokens=11, completion_tokens=5)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(START_URL, {"category": animals.pk, "requested_count": 1, "llm_model": "test-model"})
    assert response.status_code == 302
    job = AugmentationJob.objects.get()
    assert (job.category, job.requested_count, job.llm_model, job.status, job.kept_count) == (
        animals,
        1,
        "test-model",
        JobStatus.SUCCEEDED,
        1,
    )
    listing = client.get("/admin/annotation/augmentationjob/").content.decode()
    assert "Start augmentation" in listing and ">16<" in listing  # tokens used: 11 + 5


def test_admin_start_page_says_how_to_set_a_key_when_none_is_configured(client, settings):
    settings.OPENAI_API_KEY = ""
    client.force_login(make_user(roles.ADMIN))
    page = client.get(START_URL).content.decode()
    assert "OPENAI_API_KEY" in page and "OPENAI_BASE_URL" in page


def test_an_unexpected_error_fails_the_job_and_a_retry_after_the_fix_completes(
    llm_server, animals, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(job):
        raise ZeroDivisionError("a bug nobody expected")

    monkeypatch.setattr(augmentation, "_near_duplicates_drop", broken)
    llm_server.answer({"prompts": ["a gecko on a windowpane at night"]})
    job = augmentation_job_run(job_id=_job(animals, 1).pk)
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error.startswith("unexpected error (ZeroDivisionError: a bug nobody expected)")

    monkeypatch.undo()
    llm_server.answer({"prompts": ["a salamander under a mossy stone"]})
    with django_capture_on_commit_callbacks(execute=True):
        augmentation.augmentation_job_retry(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.progress) == (JobStatus.SUCCEEDED, "", 1.0)
    assert Prompt.objects.filter(augmentation_job=job).count() == 2

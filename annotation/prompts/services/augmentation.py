"""LLM augmentation of under-represented categories: create AugmentationJobs, run one batch by batch.

"Fill all deficits" makes one job per top-level category with a deficit on the balance page (each
asks for its deficit, capped by the count given), so every job has one category, one set of
examples and its own progress. A run asks the LLM for BATCH_SIZE prompts a request until the job
has its count or has spent its requests; each answer is parsed strictly (a JSON object holding a
list of strings), exact duplicates are dropped through the unique normalised hash, and the new
prompts go to the filter queue as pending, augmented prompts. Near-duplicates are marked once at the
end by the shared MinHash pass, which rejects them as duplicates.
"""

import math
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from annotation.models import AugmentationJob, Category, Prompt, PromptOrigin, PromptStatus
from annotation.prompts.llm import (
    MISSING_KEY_MESSAGE,
    ChatAnswer,
    LLMError,
    LLMNotConfigured,
    chat_json,
    json_object_parse,
    llm_client,
    llm_configured,
)
from annotation.prompts.selectors import category_balance
from annotation.prompts.services.dedupe import prompt_near_duplicates_mark
from annotation.prompts.services.store import PromptRejected, prompt_get_or_create
from mhp.jobs import JobFailed, job_enqueue, job_retry, job_run

BATCH_SIZE = 20
# Requests a job may spend beyond the ones its count needs, to make up for duplicates and bad answers.
EXTRA_REQUESTS = 2
MAX_REQUESTED_COUNT = 1000
EXAMPLE_COUNT = 8
# Examples rotate through this many recent accepted prompts, so successive requests see different ones.
EXAMPLE_POOL = EXAMPLE_COUNT * 5
AUGMENTATION_SOURCE = "augmentation"
MAX_ERROR_NOTES = 20
AUGMENTATION_TASK = "annotation.augmentation_job"
# The near-duplicate pass runs after generation: the bar stops here until it is done.
_GENERATION_SHARE = 0.95


def augmentation_jobs_create(
    *, category: Category | None, requested_count: int, llm_model: str, created_by: AbstractBaseUser | None
) -> list[AugmentationJob]:
    """Queue augmentation for one category, or (category None) one job per category with a deficit."""
    if not llm_configured():
        raise ValidationError(MISSING_KEY_MESSAGE)  # every job would fail at once: nothing is queued
    if not 1 <= requested_count <= MAX_REQUESTED_COUNT:
        raise ValidationError(f"the count must be between 1 and {MAX_REQUESTED_COUNT}")
    if category is not None and category.parent_id:
        raise ValidationError("augment a top-level category (its subcategories are set in the filter form)")
    plan = [(category, requested_count)] if category is not None else _deficit_plan(requested_count)
    if not plan:
        raise ValidationError("no category has a deficit against its target share")
    with transaction.atomic():
        jobs = [_job_create(target, count, llm_model, created_by) for target, count in plan]
        for job in jobs:
            job_enqueue(AUGMENTATION_TASK, job.pk)
    return jobs


def _deficit_plan(cap: int) -> list[tuple[Category, int]]:
    return [(row.category, min(row.deficit, cap)) for row in category_balance().rows if row.deficit > 0]


def _job_create(category: Category, count: int, llm_model: str, created_by) -> AugmentationJob:
    job = AugmentationJob(
        category=category,
        requested_count=count,
        llm_model=llm_model or settings.OPENAI_MODEL,
        created_by=created_by,
        config={"batch_size": BATCH_SIZE, "examples": EXAMPLE_COUNT},
    )
    job.full_clean()
    job.save()
    return job


@dataclass
class _Tally:
    generated: int = 0
    kept: int = 0
    duplicates: int = 0
    malformed: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_ERROR_NOTES:
            self.notes.append(text)


def augmentation_job_run(*, job_id: int) -> AugmentationJob:
    """Run a queued job; safe to call twice (a running or finished job is left alone)."""
    return job_run(AugmentationJob.objects.select_related("category"), job_id, _augment)


def augmentation_job_retry(*, job_id: int) -> AugmentationJob:
    return job_retry(AugmentationJob.objects.all(), job_id, AUGMENTATION_TASK)


def _augment(job: AugmentationJob) -> dict:
    if job.category is None:
        raise JobFailed("the job names no category; start it from the augmentation page")
    tally = _Tally()
    try:
        _generate(job, llm_client(), tally)
    except LLMNotConfigured as error:
        raise JobFailed(str(error)) from error
    except LLMError as error:
        kept = f"; the {tally.kept} prompts stored before stay in the filter queue" if tally.kept else ""
        raise JobFailed(_error_text(f"LLM request failed: {error}{kept}", tally)) from error
    _near_duplicates_drop(job)
    return {"error": _error_text("", tally), "metrics": job.metrics}


def _generate(job: AugmentationJob, client, tally: _Tally) -> None:
    examples = _example_pool(job.category)
    max_requests = math.ceil(job.requested_count / BATCH_SIZE) + EXTRA_REQUESTS
    for request_number in range(max_requests):
        wanted = min(BATCH_SIZE, job.requested_count - tally.kept)
        if wanted <= 0:
            return
        answer = chat_json(
            client=client,
            model=job.llm_model,
            system=system_message(wanted),
            user=user_message(job.category, _examples_for(examples, request_number), wanted),
        )
        _answer_store(job, answer, wanted, tally, request_number + 1)
    if tally.kept < job.requested_count:
        tally.note(f"stopped after {max_requests} requests with {tally.kept} of {job.requested_count} prompts")


def _example_pool(category: Category) -> list[str]:
    accepted = Prompt.objects.filter(category=category, status=PromptStatus.ACCEPTED, near_duplicate_of__isnull=True)
    return list(accepted.order_by("-id").values_list("text", flat=True)[:EXAMPLE_POOL])


def _examples_for(pool: list[str], request_number: int) -> list[str]:
    if len(pool) <= EXAMPLE_COUNT:
        return pool
    start = (request_number * EXAMPLE_COUNT) % len(pool)
    return (pool[start:] + pool[:start])[:EXAMPLE_COUNT]


def system_message(count: int) -> str:
    return (
        "You write prompts for text-to-image generation models. Answer with one JSON object and nothing "
        'else, of exactly this schema: {"prompts": ["...", "..."]} - a list of ' + str(count) + " strings, "
        "each one complete prompt on one line, in the style, length and level of detail of the examples, "
        "for the given category, each different from the examples and from the others."
    )


def user_message(category: Category, examples: list[str], count: int) -> str:
    lines = [f"Category: {category.name}"]
    if category.description:
        lines.append(f"About it: {category.description}")
    children = ", ".join(category.children.values_list("name", flat=True))
    if children:
        lines.append(f"Its subcategories (spread the prompts over them): {children}")
    if examples:
        lines.append("Accepted prompts of this category, as examples:")
        lines.extend(f"- {text}" for text in examples)
    lines.append(f"Write {count} new prompts for this category.")
    return "\n".join(lines)


def _answer_store(job: AugmentationJob, answer: ChatAnswer, wanted: int, tally: _Tally, number: int) -> None:
    before = (tally.generated, tally.kept, tally.duplicates, tally.malformed)
    try:
        texts = prompts_parse(answer.content)
    except ValueError as error:
        tally.malformed += 1
        tally.note(f"malformed answer {number}: {error}")
        texts = []
    new_ids = _texts_store(job, texts[:wanted], tally, number)
    Prompt.objects.filter(pk__in=new_ids).update(
        augmentation_job=job, reviews_required=settings.PROMPT_REVIEWS_REQUIRED
    )
    generated, kept, duplicates, malformed = (now - then for now, then in zip(_counts(tally), before, strict=True))
    AugmentationJob.objects.filter(pk=job.pk).update(
        generated_count=F("generated_count") + generated,
        kept_count=F("kept_count") + kept,
        duplicate_count=F("duplicate_count") + duplicates,
        malformed_count=F("malformed_count") + malformed,
        prompt_tokens=F("prompt_tokens") + answer.prompt_tokens,
        completion_tokens=F("completion_tokens") + answer.completion_tokens,
        progress=round(min(tally.kept / job.requested_count, 1.0) * _GENERATION_SHARE, 3),
    )


def _counts(tally: _Tally) -> tuple[int, int, int, int]:
    return tally.generated, tally.kept, tally.duplicates, tally.malformed


def prompts_parse(content: str) -> list:
    """The items of the answer's "prompts" list; ValueError when the answer is not that shape."""
    value = json_object_parse(content)
    prompts = value.get("prompts")
    if not isinstance(prompts, list):
        raise ValueError(f'no "prompts" list in the JSON object (keys: {", ".join(sorted(value)) or "none"})')
    return prompts


def _texts_store(job: AugmentationJob, items: list, tally: _Tally, number: int) -> list[int]:
    new_ids = []
    for position, item in enumerate(items, start=1):
        tally.generated += 1
        if not isinstance(item, str):
            tally.malformed += 1
            tally.note(f"malformed answer {number}, item {position}: not a string ({type(item).__name__})")
            continue
        try:
            prompt, created = prompt_get_or_create(
                text=item, source=AUGMENTATION_SOURCE, category=job.category, origin=PromptOrigin.AUGMENTED
            )
        except PromptRejected as error:
            tally.malformed += 1
            tally.note(f"refused answer {number}, item {position}: {error}")
            continue
        if created:
            tally.kept += 1
            new_ids.append(prompt.pk)
        else:
            tally.duplicates += 1
    return new_ids


def _near_duplicates_drop(job: AugmentationJob) -> None:
    """Mark near-duplicates table-wide; this job's marked prompts (rejected as duplicates) stop counting as kept."""
    prompt_near_duplicates_mark()
    near = Prompt.objects.filter(augmentation_job=job, near_duplicate_of__isnull=False).count()
    if near:
        AugmentationJob.objects.filter(pk=job.pk).update(
            kept_count=F("kept_count") - near, duplicate_count=F("duplicate_count") + near
        )
    job.metrics = {**job.metrics, "near_duplicates": near}


def _error_text(first: str, tally: _Tally) -> str:
    return "\n".join(filter(None, [first, *tally.notes]))

from annotation.models import Category, Prompt, PromptOrigin, PromptStatus
from annotation.prompts.normalize import normalize_prompt, prompt_hash
from annotation.unique import get_or_create_unique

MAX_PROMPT_LENGTH = 2000


class PromptRejected(ValueError):
    """The text cannot be a prompt; the message says why."""


def prompt_get_or_create(
    *,
    text: str,
    source: str = "",
    source_id: str = "",
    category: Category | None = None,
    origin: str = PromptOrigin.COLLECTED,
) -> tuple[Prompt, bool]:
    """Store a prompt unless its normalised text exists already; returns (prompt, created)."""
    cleaned = text.strip()
    if not cleaned:
        raise PromptRejected("empty prompt")
    if len(cleaned) > MAX_PROMPT_LENGTH:
        raise PromptRejected(f"longer than {MAX_PROMPT_LENGTH} characters")
    normalized = normalize_prompt(cleaned)
    digest = prompt_hash(normalized)
    return get_or_create_unique(
        Prompt.objects.filter(normalized_hash=digest),
        lambda: Prompt(
            text=cleaned,
            normalized_text=normalized,
            normalized_hash=digest,
            source=source,
            source_id=source_id,
            category=category,
            origin=origin,
        ),
    )


def prompt_accept(*, prompt: Prompt, category: Category | None = None) -> Prompt:
    prompt.status = PromptStatus.ACCEPTED
    prompt.rejection_reasons = []
    if category is not None:
        prompt.category = category
    prompt.save(update_fields=["status", "rejection_reasons", "category", "updated_at"])
    return prompt

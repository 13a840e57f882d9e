"""The one door to the LLM: an OpenAI-compatible chat completion asking for a JSON object, with our own retries.

The client is built with `max_retries=0` so that every retry happens here, where the delay is a
module constant the tests make small and the attempts are countable.
"""

import json
import time
from dataclasses import dataclass

import openai
from django.conf import settings

MISSING_KEY_MESSAGE = (
    "No LLM is configured: set the OPENAI_API_KEY environment variable (and OPENAI_BASE_URL for an "
    "OpenAI-compatible server other than OpenAI's), then restart the web process and the workers."
)
# Delay before retry n is RETRY_BASE_DELAY * 2**(n-1), capped at RETRY_MAX_DELAY.
RETRY_BASE_DELAY = 2.0
RETRY_MAX_DELAY = 60.0
MAX_ATTEMPTS = 5
# Rate limits, server errors and network trouble pass; a 4xx other than 429 is our mistake and would repeat.
RETRYABLE_ERRORS = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


class LLMNotConfigured(RuntimeError):
    """No API key is set; the message says how to set one."""


class LLMError(RuntimeError):
    """The LLM could not be reached or refused the request, after the retries."""


@dataclass(frozen=True)
class ChatAnswer:
    content: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int


def llm_configured() -> bool:
    return bool(settings.OPENAI_API_KEY)


def llm_client() -> openai.OpenAI:
    if not llm_configured():
        raise LLMNotConfigured(MISSING_KEY_MESSAGE)
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT_SECONDS,
        max_retries=0,
    )


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    return min(RETRY_BASE_DELAY * 2 ** (attempt - 1), RETRY_MAX_DELAY)


def chat_json(*, client: openai.OpenAI, model: str, system: str, user: str) -> ChatAnswer:
    """One chat completion in JSON mode; retries rate limits, 5xx, timeouts and connection errors."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            completion = client.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format={"type": "json_object"},
            )
        except RETRYABLE_ERRORS as error:
            if attempt == MAX_ATTEMPTS:
                raise LLMError(f"{_describe(error)}; gave up after {attempt} attempts") from error
            time.sleep(retry_delay(attempt))
        except openai.APIStatusError as error:
            raise LLMError(_describe(error)) from error
        else:
            return _answer(completion, attempt)
    raise AssertionError("unreachable: the loop returns or raises")


def _answer(completion, attempt: int) -> ChatAnswer:
    usage = completion.usage
    choices = completion.choices or []
    content = choices[0].message.content if choices else None
    return ChatAnswer(
        content=content or "",
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        attempts=attempt,
    )


def _describe(error: openai.OpenAIError) -> str:
    status = getattr(error, "status_code", None)
    kind = type(error).__name__
    return f"{kind} (HTTP {status}): {error}" if status else f"{kind}: {error}"


def json_object_parse(content: str) -> dict:
    """The answer's JSON object; ValueError with a short reason when it is not one."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at character {error.pos})") from error
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value

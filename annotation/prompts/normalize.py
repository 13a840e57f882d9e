"""Text normalisation used to find exact duplicate prompts."""

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
# A run of punctuation (with spaces in between) collapses to its first mark: "!!!" -> "!", ", ," -> ",".
_PUNCTUATION_RUN = re.compile(r"([^\w\s])(?:\s*[^\w\s])+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([^\w\s])")


def normalize_prompt(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _PUNCTUATION_RUN.sub(r"\1", folded)
    folded = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", folded)
    folded = _WHITESPACE.sub(" ", folded).strip()
    return folded.strip(" ,.;:")


def prompt_hash(normalized: str) -> str:
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()

"""What the database refuses in imported values, found before a row is written.

PostgreSQL stores no NUL character in text or jsonb, psycopg cannot encode a lone surrogate (JSON's
"\\ud800" decodes to one), jsonb has no NaN or Infinity, and a bigint holds 64 bits. An import that
hands such a value to the database fails on that row with an error nobody can read; these checks
turn each into a refusal of that row, with its reason.
"""

import math

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# Generation settings are a flat record in practice; a deeper document is refused, not walked further.
MAX_JSON_DEPTH = 32


def text_problem(value: str) -> str:
    """Why `value` cannot be stored as text, or "" when it can."""
    if "\0" in value:
        return "contains NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains invalid Unicode (a lone surrogate)"
    return ""


def bigint_problem(value: object) -> str:
    """Why `value` is not a storable 64-bit integer, or "" when it is (a bool is not an integer)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer"
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        return "must be an integer between -2^63 and 2^63-1"
    return ""


def json_problem(value: object, *, depth: int = 0) -> str:
    """Why the decoded JSON `value` cannot be stored in a jsonb column, or "" when it can."""
    if depth > MAX_JSON_DEPTH:
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "holds NaN or Infinity"
    if isinstance(value, dict):
        children = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        children = value
    else:
        return ""
    for child in children:
        if problem := json_problem(child, depth=depth + 1):
            return problem
    return ""

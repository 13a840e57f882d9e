"""The labeling queue's PostgreSQL functions, one `.sql` file each beside this module.

These files are the source: the text here is the text that runs. A migration installs a version of
them from its own frozen copy (`annotation/migrations/sql/`), and a test checks that the functions
installed in the database equal these files. Changing one means a new migration with a new frozen copy.
"""

import re
from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent

# Creation order: the claim calls the front's function.
FUNCTION_FILES = ("fresh_front_move", "pair_claim", "judgement_submit", "user_has_perm")


@cache
def source(name: str) -> str:
    return (_DIR / f"{name}.sql").read_text()


def _head_scan() -> int:
    """How many partly judged pairs a claim looks at: the LIMIT of the claim's head, written once, there."""
    limits = set(re.findall(r"ORDER BY h\.judgements_done DESC, h\.id\s+LIMIT (\d+)", source("pair_claim")))
    if len(limits) != 1:
        raise ValueError(f"pair_claim.sql must bound every head walk by one number, found {sorted(limits)}")
    return int(limits.pop())


HEAD_SCAN = _head_scan()


def _front_lock() -> int:
    """The advisory lock key a claim takes to move a kind's fresh front (the kind is the lock's second key)."""
    keys = set(re.findall(r"pg_try_advisory_xact_lock\((\d+), _gold::integer\)", source("pair_claim")))
    if len(keys) != 1:
        raise ValueError(f"pair_claim.sql must move the fronts under one lock key, found {sorted(keys)}")
    return int(keys.pop())


FRONT_LOCK = _front_lock()

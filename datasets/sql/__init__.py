"""The datasets app's PostgreSQL functions, one `.sql` file each beside this module.

These files are the source: the text here is the text that runs. A migration installs a version of
them from its own frozen copy (`datasets/migrations/sql/`), and a test checks that the functions
installed in the database equal these files. Changing one means a new migration with a new frozen copy.
"""

from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent

FUNCTION_FILES = ("dataset_version_frozen_guard", "dataset_item_frozen_guard", "dataset_judgement_frozen_guard")


@cache
def source(name: str) -> str:
    return (_DIR / f"{name}.sql").read_text()

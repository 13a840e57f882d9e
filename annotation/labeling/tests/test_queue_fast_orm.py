"""The queue's own tests once more on the portable ORM path (SQLite's), here on PostgreSQL.

On PostgreSQL, claim and submit normally take the SQL statements of `queue/postgres.py`; both paths
must keep the same rules, including under 20 concurrent workers.
"""

import pytest

from annotation.labeling import queue
from annotation.labeling.tests.test_queue_concurrency import (  # noqa: F401 - collected here again
    test_twenty_workers_empty_the_queue_with_exactly_n_judgements_per_pair,
    test_twenty_workers_under_adaptive_redundancy_judge_each_pair_as_far_as_the_rule_asks,
)
from annotation.labeling.tests.test_queue_service import *  # noqa: F403 - collected here again

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def orm_path(monkeypatch):
    monkeypatch.setattr(queue, "USE_POSTGRES_SQL", False)

"""A version's raw judgements: every counted judgement of every pair, copied into the version when it freezes.

A counted judgement is one whose annotator's judgements are not excluded (the same rule as the labels), on
any pair, complete or not, in the version or not (its `split` is then empty), so that anyone can aggregate
the answers again their own way. The annotator appears as a pseudonym (datasets/pseudonyms.py).

The copy is one INSERT ... SELECT per batch of annotators, the pseudonyms given as a CASE over the batch's
ids: the rows never travel through Python (about ten times faster than building model instances), and a
batch keeps the statement's parameters under SQLite's limit.
"""

from django.db import connection
from django.db.models import Count, Q

from annotation.dimensions import DIMENSION_KEYS
from annotation.models import Judgement
from datasets import selectors
from datasets.models import DatasetItem, DatasetJudgement, DatasetVersion
from datasets.pseudonyms import annotator_pseudonym

# Annotators per INSERT: three parameters each (CASE and IN), under the 999 parameters per statement of
# SQLite builds before 3.32.
ANNOTATOR_BATCH = 300
_COPIED = (*DIMENSION_KEYS, "left_side", "duration_ms", "created_at")


def raw_judgements_write(*, version: DatasetVersion, excluded_annotators: list[int]) -> dict:
    """Write the version's raw judgements (after its items, which give each pair's split); returns their counts."""
    judging = (
        selectors.counted_judgements(excluded_annotators=excluded_annotators)
        .order_by("annotator_id")
        .values_list("annotator_id", flat=True)
        .distinct()
    )
    annotators = list(judging)
    for start in range(0, len(annotators), ANNOTATOR_BATCH):
        _copy(version, annotators[start : start + ANNOTATOR_BATCH])
    return DatasetJudgement.objects.filter(version=version).aggregate(
        rows=Count("id"),
        pairs=Count("pair_id", distinct=True),
        in_version=Count("id", filter=~Q(split="")),
        annotators=Count("annotator", distinct=True),
    )


def _copy(version: DatasetVersion, annotators: list[int]) -> None:
    quote = connection.ops.quote_name
    copied = ", ".join(quote(column) for column in _COPIED)
    from_judgement = ", ".join(f"j.{quote(column)}" for column in _COPIED)
    cases = " ".join("WHEN %s THEN %s" for _ in annotators)
    pseudonyms = [value for user_id in annotators for value in (user_id, annotator_pseudonym(user_id))]
    in_batch = ", ".join("%s" for _ in annotators)
    sql = (
        f"INSERT INTO {quote(DatasetJudgement._meta.db_table)} (version_id, pair_id, annotator, {copied}, split) "
        f"SELECT %s, j.pair_id, CASE j.annotator_id {cases} END, {from_judgement}, COALESCE(i.split, '') "
        f"FROM {quote(Judgement._meta.db_table)} j LEFT JOIN {quote(DatasetItem._meta.db_table)} i "
        f"ON i.version_id = %s AND i.pair_id = j.pair_id WHERE j.annotator_id IN ({in_batch})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [version.pk, *pseudonyms, version.pk, *annotators])

"""A version's raw judgements: every counted judgement of every pair, copied into the version when it freezes.

A counted judgement is one whose annotator's judgements are not excluded (the same rule as the labels), on
any pair, complete or not, in the version or not (its `split` is then empty), so that anyone can aggregate
the answers again their own way. The annotator appears as a pseudonym (datasets/pseudonyms.py).
"""

from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from annotation.dimensions import DIMENSION_KEYS
from datasets import selectors
from datasets.bulk import rows_insert
from datasets.models import DatasetItem, DatasetJudgement, DatasetVersion
from datasets.pseudonyms import annotator_pseudonym

# DatasetJudgement rows per INSERT: large batches, bounded memory.
WRITE_BATCH = 5_000
_COPIED = ("pair_id", "annotator_id", *DIMENSION_KEYS, "left_side", "duration_ms", "created_at", "item_split")


def raw_judgements_write(*, version: DatasetVersion, excluded_annotators: list[int]) -> dict:
    """Write the version's raw judgements (after its items, which give each pair's split); returns their counts."""
    split = DatasetItem.objects.filter(version=version, pair_id=OuterRef("pair_id")).values("split")[:1]
    rows = (
        selectors.counted_judgements(excluded_annotators=excluded_annotators)
        .annotate(item_split=Coalesce(Subquery(split), Value("")))
        .order_by("pair_id", "annotator_id")
        .values_list(*_COPIED)
        .iterator(chunk_size=selectors.STREAM_CHUNK)
    )
    counts = {"rows": 0, "pairs": 0, "in_version": 0}
    pseudonyms: dict[int, str] = {}  # one HMAC per annotator, not per judgement

    def judgements():
        previous_pair = None
        for pair_id, annotator_id, *answers, left_side, duration_ms, created_at, item_split in rows:
            counts["pairs"] += pair_id != previous_pair
            counts["in_version"] += bool(item_split)
            previous_pair = pair_id
            if annotator_id not in pseudonyms:
                pseudonyms[annotator_id] = annotator_pseudonym(annotator_id)
            yield DatasetJudgement(
                version=version, pair_id=pair_id, annotator=pseudonyms[annotator_id],
                left_side=left_side, duration_ms=duration_ms, created_at=created_at, split=item_split,
                **dict(zip(DIMENSION_KEYS, answers, strict=True)),
            )  # fmt: skip

    counts["rows"] = rows_insert(DatasetJudgement, judgements(), batch_size=WRITE_BATCH)
    return {**counts, "annotators": len(pseudonyms)}

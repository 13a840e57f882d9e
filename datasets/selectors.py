"""Reads of the datasets app: judgement streams for freezing, item streams for exports, version figures."""

from collections.abc import Iterator
from itertools import groupby

from django.db.models import Count, F, FloatField, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from annotation.dimensions import DIMENSION_KEYS
from annotation.models import AnnotatorProfile, Judgement, Prompt
from datasets.models import DatasetItem, DatasetJudgement, DatasetVersion, ExportJob

# Rows fetched per round trip from a server-side cursor: big enough to amortise, small enough for flat memory.
STREAM_CHUNK = 5_000


def excluded_annotator_ids() -> list[int]:
    """Annotators whose judgements stay out of dataset versions (no profile = included)."""
    return sorted(AnnotatorProfile.objects.filter(judgements_excluded=True).values_list("user_id", flat=True))


def pair_votes(*, excluded_annotators: list[int]) -> Iterator[tuple[int, int, int, dict, dict | None]]:
    """(pair id, prompt id, judgements required, votes per dimension, adjudication or None) per judged
    non-gold pair, in pair id order, streamed with a server-side cursor."""
    columns = ("pair_id", "pair__prompt_id", "pair__judgements_required", *DIMENSION_KEYS)
    adjudicated = tuple(f"pair__adjudication__{key}" for key in DIMENSION_KEYS)
    rows = (
        Judgement.objects.filter(pair__is_gold=False)
        .exclude(annotator_id__in=excluded_annotators)
        .order_by("pair_id", "id")
        .values_list(*columns, *adjudicated)
        .iterator(chunk_size=STREAM_CHUNK)
    )
    dimensions = len(DIMENSION_KEYS)
    for pair_id, group in groupby(rows, key=lambda row: row[0]):
        judgements = list(group)
        head = judgements[0]
        votes = {key: [row[3 + i] for row in judgements] for i, key in enumerate(DIMENSION_KEYS)}
        decided = head[3 + dimensions :]
        adjudication = dict(zip(DIMENSION_KEYS, decided, strict=True)) if decided[0] else None
        yield pair_id, head[1], head[2], votes, adjudication


def counted_judgements(*, excluded_annotators: list[int]) -> QuerySet:
    """Every judgement of an annotator whose judgements count, on any pair (complete or not, gold too): what
    the Dawid-Skene fit learns reliabilities from and what a version snapshots as its raw judgements."""
    return Judgement.objects.exclude(annotator_id__in=excluded_annotators)


def prompt_categories(*, prompt_ids: set[int]) -> dict[int, str | None]:
    """Category slug of each prompt (None when uncategorised), read in one streamed pass."""
    rows = Prompt.objects.order_by("id").values_list("id", "category__slug").iterator(chunk_size=STREAM_CHUNK)
    return {prompt_id: slug for prompt_id, slug in rows if prompt_id in prompt_ids}


def version_generator_counts(*, version: DatasetVersion) -> dict[str, dict[str, int]]:
    """split -> generator name -> number of images of that generator in the split's pairs."""
    counts: dict[str, dict[str, int]] = {}
    for side in ("image_first", "image_second"):
        rows = (
            DatasetItem.objects.filter(version=version)
            .values_list("split", F(f"pair__{side}__generator__name"))
            .annotate(n=Count("id"))
            .order_by()
        )
        for split, generator, n in rows:
            per_split = counts.setdefault(split, {})
            per_split[generator] = per_split.get(generator, 0) + n
    return counts


# The columns of one exported pair, in this order (labels as two floats per dimension).
EXPORT_COLUMNS = (
    "pair_id",
    "split",
    "prompt_id",
    "prompt",
    "category",
    "image_first",
    "image_second",
    "image_first_sha256",
    "image_second_sha256",
    "generator_first",
    "generator_second",
    "annotator_count",
    "agreement",
    *(f"{key}_{side}" for key in DIMENSION_KEYS for side in ("first", "second")),
)


def export_items(*, version: DatasetVersion, split: str) -> QuerySet:
    """The values of EXPORT_COLUMNS for one split, in item id order (the version/split/id index)."""
    label_values = {
        f"{key}_{side}": Cast(KT(f"labels__{key}__{index}"), FloatField())
        for key in DIMENSION_KEYS
        for index, side in enumerate(("first", "second"))
    }
    return (
        DatasetItem.objects.filter(version=version, split=split)
        .order_by("id")
        .annotate(**label_values)
        .values_list(
            "pair_id",
            "split",
            "pair__prompt_id",
            "pair__prompt__text",
            "pair__prompt__category__slug",
            "pair__image_first__file",
            "pair__image_second__file",
            "pair__image_first__sha256",
            "pair__image_second__sha256",
            "pair__image_first__generator__name",
            "pair__image_second__generator__name",
            "annotator_count",
            "agreement",
            *label_values,
        )
    )


# The columns of one exported raw judgement, in this order; `in_version` and `split` are derived from the
# stored split (empty: the pair is not in the version).
JUDGEMENT_EXPORT_COLUMNS = (
    "pair_id",
    "image_first",
    "image_second",
    "annotator",
    *DIMENSION_KEYS,
    "left_side",
    "duration_ms",
    "created_at",
    "in_version",
    "split",
)


def export_judgements(*, version: DatasetVersion) -> QuerySet:
    """The stored columns behind JUDGEMENT_EXPORT_COLUMNS (split last, in_version left to the writer), in
    (pair, annotator) order: the order of the version's unique index."""
    return (
        DatasetJudgement.objects.filter(version=version)
        .order_by("pair_id", "annotator")
        .values_list(
            "pair_id",
            "pair__image_first__file",
            "pair__image_second__file",
            "annotator",
            *DIMENSION_KEYS,
            "left_side",
            "duration_ms",
            "created_at",
            "split",
        )
    )


def dataset_version_by_name(*, name: str) -> DatasetVersion | None:
    return DatasetVersion.objects.filter(name=name).first()


def export_job_get(*, job_id: int) -> ExportJob:
    return ExportJob.objects.select_related("version").get(pk=job_id)

"""Freezing a dataset version: select complete pairs, aggregate labels, split by prompt, write items once.

Selection: non-gold pairs with at least `judgements_required` counted judgements, where a judgement
counts unless its annotator's profile has `judgements_excluded` (no profile = counted). A pair whose
counted judgements fall short because of an exclusion is left out, not labelled from fewer votes.
With `min_agreement`, pairs below it are left out unless a reviewer adjudicated them (the
adjudication settles the disagreement). Labels `dawid-skene` come from a fit over every counted judgement
(datasets/services/dawid_skene.py). The version also keeps every counted judgement of every pair as it
stood (DatasetJudgement, datasets/services/raw_judgements.py). Every pass over the judgements reads one
snapshot (REPEATABLE READ on PostgreSQL), so judgements arriving meanwhile cannot make the passes disagree.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS
from datasets import selectors
from datasets.aggregation import LabelMode, PairLabels, pair_labels
from datasets.bulk import rows_insert
from datasets.models import DatasetItem, DatasetStatus, DatasetVersion
from datasets.services.dawid_skene import DawidSkeneLabels, dawid_skene_labels
from datasets.services.raw_judgements import raw_judgements_write
from datasets.splits import UNCATEGORISED, PromptGroup, prompts_split, split_size_parse, split_targets
from mhp.jobs import job_enqueue, unexpected_error_message

# DatasetItem rows per INSERT: large batches, bounded memory.
WRITE_BATCH = 5_000

Progress = Callable[[int, int], None]


class FreezeError(ValueError):
    """The version cannot be frozen; the message says why and nothing was changed."""


@dataclass(frozen=True)
class FreezeOptions:
    mode: LabelMode = LabelMode.MAJORITY
    min_agreement: float | None = None
    val: int | float | None = None
    test: int | float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        LabelMode(self.mode)  # raises ValueError on an unknown mode
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement {self.min_agreement} is not between 0 and 1")

    @classmethod
    def from_input(
        cls,
        *,
        labels: str = LabelMode.MAJORITY,
        min_agreement: float | None = None,
        val: int | float | str | None = None,
        test: int | float | str | None = None,
        seed: int = 0,
    ) -> "FreezeOptions":
        """The options a person gave (the admin's form, `freeze_dataset`'s flags): split sizes as typed,
        '10000' pairs or a '0.05' share, blank for the default; refused with the same messages from both."""
        try:
            return cls(mode=LabelMode(labels), min_agreement=min_agreement, val=_split_size(val),
                       test=_split_size(test), seed=seed)  # fmt: skip
        except ValueError as error:
            raise FreezeError(str(error)) from None

    def as_config(self) -> dict:
        return {**asdict(self), "mode": str(self.mode)}


def _split_size(value: int | float | str | None) -> int | float | None:
    if isinstance(value, str):
        return split_size_parse(value) if value.strip() else None
    return value


def dataset_version_create(
    *, name: str, options: FreezeOptions, description: str = "", created_by: AbstractBaseUser | None = None
) -> DatasetVersion:
    """A draft version holding the options; refuses a name in use (a version is never rewritten)."""
    existing = DatasetVersion.objects.filter(name=name).first()
    if existing is not None and existing.status != DatasetStatus.FAILED:
        raise FreezeError(
            f"dataset version {name!r} already exists ({existing.status}); versions never change, choose another name"
        )
    version = DatasetVersion(
        name=name, description=description, config=options.as_config(), seed=options.seed, created_by=created_by
    )
    try:
        version.full_clean(validate_unique=False)  # the name was checked above; the database enforces it
    except ValidationError as error:
        raise FreezeError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
    with transaction.atomic():
        if existing is not None:
            # A failed freeze left no items (its transaction rolled back): its name is free again.
            existing.delete()
        version.save()
    return version


def dataset_version_freeze(*, version_id: int, progress: Progress | None = None) -> DatasetVersion:
    """Freeze a draft version; on failure it is marked failed with the reason and holds no items."""
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version_id)
        if version.status != DatasetStatus.DRAFT:
            raise FreezeError(f"dataset version {version.name!r} is {version.status}, only a draft can be frozen")
        version.status = DatasetStatus.FREEZING
        version.save(update_fields=["status"])
    try:
        _freeze(version, progress)
    except Exception as error:  # whatever stopped it, the version must not stay "freezing"
        expected = isinstance(error, FreezeError | DatabaseError)
        message = str(error) if expected else unexpected_error_message(error)
        DatasetVersion.objects.filter(pk=version.pk).update(status=DatasetStatus.FAILED, error=message)
        raise
    return version


def dataset_version_freeze_later(*, version_id: int) -> None:
    """Queue the freeze of a draft version on the default queue once the current transaction commits."""
    job_enqueue("datasets.freeze_version", version_id)


def dataset_freeze(
    *,
    name: str,
    options: FreezeOptions,
    description: str = "",
    created_by: AbstractBaseUser | None = None,
    progress: Progress | None = None,
) -> DatasetVersion:
    version = dataset_version_create(name=name, options=options, description=description, created_by=created_by)
    return dataset_version_freeze(version_id=version.pk, progress=progress)


def _freeze(version: DatasetVersion, progress: Progress | None) -> None:
    options = FreezeOptions(**{**version.config, "mode": LabelMode(version.config["mode"])})
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # Must be the transaction's first statement; both passes then see one snapshot.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        excluded = selectors.excluded_annotator_ids()
        fit = dawid_skene_labels(excluded_annotators=excluded) if options.mode == LabelMode.DAWID_SKENE else None
        groups = _prompt_groups(excluded, options, fit)
        total = sum(group.pairs for group in groups.values())
        if not total:
            raise FreezeError("no complete, non-gold pairs match the options; nothing to freeze")
        try:
            val_pairs, test_pairs = split_targets(total=total, val=options.val, test=options.test)
        except ValueError as error:
            raise FreezeError(str(error)) from None
        assignment = prompts_split(prompts=groups, val_pairs=val_pairs, test_pairs=test_pairs, seed=options.seed)
        stats = _items_write(version, excluded, options, fit, assignment, groups, progress, total)
        stats["prompts"] = dict(sorted(Counter(assignment.values()).items()))
        stats["generators"] = selectors.version_generator_counts(version=version)
        stats["judgements"] = raw_judgements_write(version=version, excluded_annotators=excluded)
        if fit is not None:
            stats["dawid_skene"] = fit.figures()
        version.config = {
            **version.config,
            "excluded_annotators": len(excluded),
            "val_pairs_target": val_pairs,
            "test_pairs_target": test_pairs,
        }
        version.stats, version.status, version.progress = stats, DatasetStatus.FROZEN, 1.0
        version.frozen_at = timezone.now()
        version.save(update_fields=["config", "stats", "status", "progress", "frozen_at"])


def _selected(options: FreezeOptions, excluded: list[int], fit: DawidSkeneLabels | None):
    """(pair id, prompt id, PairLabels) of every pair the options select, streamed in pair id order."""
    for pair_id, prompt_id, required, votes, adjudication in selectors.pair_votes(excluded_annotators=excluded):
        if len(votes[DIMENSION_KEYS[0]]) < required:
            continue
        posteriors = fit.posteriors(pair_id) if fit is not None else None
        labels = pair_labels(votes=votes, mode=options.mode, adjudication=adjudication, posteriors=posteriors)
        if options.min_agreement is not None and adjudication is None and labels.agreement < options.min_agreement:
            continue
        yield pair_id, prompt_id, labels


def _prompt_groups(excluded: list[int], options: FreezeOptions, fit: DawidSkeneLabels | None) -> dict:
    pairs_per_prompt: Counter[int] = Counter(prompt_id for _, prompt_id, _ in _selected(options, excluded, fit))
    categories = selectors.prompt_categories(prompt_ids=set(pairs_per_prompt))
    return {
        prompt_id: PromptGroup(category=categories.get(prompt_id) or UNCATEGORISED, pairs=n)
        for prompt_id, n in pairs_per_prompt.items()
    }


def _items_write(version, excluded, options, fit, assignment, groups, progress, total) -> dict:
    stats = _Stats()

    def items():
        for pair_id, prompt_id, labels in _selected(options, excluded, fit):
            split = assignment[prompt_id]
            stats.add(split, groups[prompt_id].category, labels)
            yield DatasetItem(version=version, pair_id=pair_id, split=split, labels=labels.labels,
                              annotator_count=labels.annotator_count, agreement=labels.agreement)  # fmt: skip

    rows_insert(DatasetItem, items(), batch_size=WRITE_BATCH, written=progress and (lambda done: progress(done, total)))
    if progress:
        progress(total, total)
    return stats.as_dict()


class _Stats:
    """Counts per split, per category and split, and per dimension label class and split."""

    def __init__(self) -> None:
        self.splits: Counter[str] = Counter()
        self.categories: dict[str, Counter[str]] = defaultdict(Counter)
        self.labels: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))

    def add(self, split: str, category: str, labels: PairLabels) -> None:
        self.splits[split] += 1
        self.categories[split][category] += 1
        for key, label_class in labels.classes.items():
            self.labels[split][key][label_class] += 1

    def as_dict(self) -> dict:
        return {
            "pairs": sum(self.splits.values()),
            "splits": dict(sorted(self.splits.items())),
            "categories": {split: dict(sorted(c.items())) for split, c in sorted(self.categories.items())},
            "labels": {
                split: {key: dict(sorted(c.items())) for key, c in per_key.items()}
                for split, per_key in sorted(self.labels.items())
            },
        }

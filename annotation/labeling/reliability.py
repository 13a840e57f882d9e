"""Annotator reliability: the Dawid-Skene fit behind a ReliabilityRun, per dimension, with a tie class.

The EM itself is `consensus.dawid_skene`, written in numpy. crowd-kit, the field's library, was not used:
it pulls pandas, scikit-learn, nltk and transformers into the web install, which must stay small (and free
of torch); the fit is forty lines of numpy on arrays this module builds.

A run, incremental in two ways:
- Skipped when nothing changed: a fingerprint of the judgements (count, highest id and a checksum of every
  answer, one aggregate query) equal to the last successful run's ends the run at once, marked skipped;
  the scheduled refresh (every few minutes) does not even create a run then. Revisions change a judgement's
  answers in place with no timestamp to compare, hence a checksum of the answers rather than a "modified
  since" test. (Two revisions whose id-weighted changes cancel exactly would go unseen until the next
  judgement; the checksum sums id x answer code.)
- Warm-started: each dimension's EM starts from the stored confusions (AnnotatorReliability) and prior
  (DimensionPrior) of the previous fit, an annotator seen for the first time from the prior's
  `default_confusion`; when few judgements are new it converges in a few iterations.

Every judgement is read (excluded annotators too: their reliability is what a reviewer wants to see) in id
order, in keyset chunks of plain integers (the database turns answers into class indices). Reliabilities,
priors and spammer flags are written in one transaction.

Gold answers and adjudications do not anchor the fit: `dawid_skene` has no way to pin a pair's label, and
the quality page shows gold accuracy beside these figures.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import BigIntegerField, Case, Count, F, IntegerField, Max, Sum, Value, When
from django.utils import timezone

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.consensus import (
    CLASS_INDEX,
    DawidSkeneFit,
    accuracy,
    dawid_skene,
    informativeness,
    looks_like_spammer,
)
from annotation.labeling.flags import annotator_flag_open
from annotation.models import (
    AnnotatorFlag,
    AnnotatorProfile,
    AnnotatorReliability,
    DimensionPrior,
    FlagKind,
    Judgement,
    ReliabilityRun,
)
from mhp.jobs import JobStatus, job_enqueue, job_progress, job_retry, job_run

RELIABILITY_TASK = "annotation.reliability_run"
READ_CHUNK = 50_000
# A queued or running run older than this is taken for lost (its worker was killed): it no longer stands in
# the way of a new one.
RUN_STALE_AFTER = timedelta(hours=1)
# Share of the progress bar the read takes (the fits and the write take the rest).
_READ_SHARE = 0.5
_DIGITS = 6
# The EM stops once no pair's label posterior moves by this much in an iteration: the figures shown have two
# or three decimals, and each later run goes on from where this one stopped (the warm start).
FIT_TOLERANCE = 1e-3


def _answer_index(key: str) -> Case:
    """The answer on dimension `key` as its CLASSES index, computed by the database."""
    whens = [When(**{key: name}, then=Value(index)) for name, index in CLASS_INDEX.items()]
    return Case(*whens, output_field=IntegerField())


def judgements_fingerprint() -> list[int]:
    """[count, highest id, checksum of the answers]: changes with any new, deleted or revised judgement."""
    code = sum((_answer_index(key) * 3**power for power, key in enumerate(DIMENSION_KEYS)), Value(1))
    figures = Judgement.objects.aggregate(
        count=Count("id"), last=Max("id"), checksum=Sum(F("id") * code, output_field=BigIntegerField())
    )
    return [int(figures["count"]), int(figures["last"] or 0), int(figures["checksum"] or 0)]


@dataclass(frozen=True)
class Votes:
    """Every judgement as dense integer arrays, ready for `dawid_skene`."""

    items: np.ndarray  # (judgements,): dense index of the pair
    judges: np.ndarray  # (judgements,): dense index of the annotator
    answers: np.ndarray  # (judgements, dimensions): CLASSES index, dimensions in DIMENSION_KEYS order
    annotator_ids: np.ndarray  # (judges,): the user id behind each dense index
    pair_ids: np.ndarray  # (items,): the pair id behind each dense index, sorted

    @property
    def n_items(self) -> int:
        return len(self.pair_ids)


def votes_read(*, excluded_annotators: tuple[int, ...] = (), on_rows=None) -> Votes:
    """One pass over the judgements (but those of `excluded_annotators`) in id order, `READ_CHUNK` rows a
    query (keyset, no OFFSET). Pairs and annotators are numbered by sorted id, so the same judgements give
    the same arrays whatever order they were written in."""
    indices = {f"{key}_index": _answer_index(key) for key in DIMENSION_KEYS}
    judgements = Judgement.objects.exclude(annotator_id__in=excluded_annotators)
    rows = judgements.annotate(**indices).order_by("id").values_list("id", "pair_id", "annotator_id", *indices)
    blocks, last, read = [], 0, 0
    while chunk := list(rows.filter(id__gt=last)[:READ_CHUNK]):
        blocks.append(np.array(chunk, dtype=np.int64))
        last, read = chunk[-1][0], read + len(chunk)
        if on_rows:
            on_rows(read)
    table = np.concatenate(blocks) if blocks else np.zeros((0, 3 + len(DIMENSION_KEYS)), dtype=np.int64)
    pair_ids, items = np.unique(table[:, 1], return_inverse=True)
    annotator_ids, judges = np.unique(table[:, 2], return_inverse=True)
    return Votes(items, judges, table[:, 3:], annotator_ids, pair_ids)


@dataclass(frozen=True)
class DimensionFit:
    fit: DawidSkeneFit
    warm: bool


def _warm_start(key: str, annotator_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The previous fit's confusions and prior for these annotators, or (None, None) before any fit."""
    stored = DimensionPrior.objects.filter(dimension=key).first()
    if stored is None or not len(annotator_ids):
        return None, None
    known = dict(AnnotatorReliability.objects.filter(dimension=key).values_list("annotator_id", "confusion"))
    default = stored.default_confusion
    confusions = np.array([known.get(int(user_id), default) for user_id in annotator_ids], dtype=float)
    return confusions, np.asarray(stored.prior, dtype=float)


def votes_fit(votes: Votes, *, on_dimension=None) -> dict[str, DimensionFit]:
    """Dawid-Skene per dimension, each warm-started from what is stored."""
    fits = {}
    for index, key in enumerate(DIMENSION_KEYS):
        confusions, prior = _warm_start(key, votes.annotator_ids)
        fit = dawid_skene(
            votes.items,
            votes.judges,
            votes.answers[:, index],
            n_items=votes.n_items,
            n_judges=len(votes.annotator_ids),
            confusions=confusions,
            prior=prior,
            tolerance=FIT_TOLERANCE,
        )
        fits[key] = DimensionFit(fit, warm=confusions is not None)
        if on_dimension:
            on_dimension(index + 1)
    return fits


def _rounded(array: np.ndarray) -> list:
    return np.round(np.asarray(array, dtype=float), _DIGITS).tolist()


def _figures(fits: dict[str, DimensionFit], judge: int) -> dict[str, dict]:
    """One annotator's accuracy and informativeness per dimension."""
    figures = {}
    for key, dimension in fits.items():
        confusion, prior = dimension.fit.confusions[judge], dimension.fit.prior
        figures[key] = {
            # Rounding can take a sum of probabilities a hair past 1; the column is checked to [0, 1].
            "accuracy": round(min(max(accuracy(confusion, prior), 0.0), 1.0), _DIGITS),
            "informativeness": round(informativeness(confusion, prior), _DIGITS),
        }
    return figures


def _reliability_rows(votes: Votes, fits: dict[str, DimensionFit]) -> list[AnnotatorReliability]:
    rows = []
    for judge, user_id in enumerate(votes.annotator_ids.tolist()):
        for key, figures in _figures(fits, judge).items():
            fit = fits[key].fit
            rows.append(
                AnnotatorReliability(
                    annotator_id=user_id,
                    dimension=key,
                    confusion=_rounded(fit.confusions[judge]),
                    judgements=int(fit.judgements[judge]),
                    **figures,
                )
            )
    return rows


def _prior_store(key: str, fit: DawidSkeneFit) -> None:
    """The prior, and how a newcomer is assumed to answer: the judgement-weighted mean of the judges' confusions."""
    weights = fit.judgements / max(fit.judgements.sum(), 1.0)
    default = np.einsum("j,jta->ta", weights, fit.confusions)
    DimensionPrior.objects.update_or_create(
        dimension=key, defaults={"prior": _rounded(fit.prior), "default_confusion": _rounded(default)}
    )


def spammers_find(votes: Votes, fits: dict[str, DimensionFit]) -> dict[int, dict]:
    """user id -> figures, for annotators with enough judgements whose answers barely depend on the images."""
    threshold, minimum = settings.SPAMMER_INFORMATIVENESS, settings.SPAMMER_MIN_JUDGEMENTS
    judged = np.bincount(votes.judges, minlength=len(votes.annotator_ids))
    found = {}
    for judge, user_id in enumerate(votes.annotator_ids.tolist()):
        figures = _figures(fits, judge)
        scores = [figures[key]["informativeness"] for key in DIMENSION_KEYS]
        if judged[judge] >= minimum and looks_like_spammer(scores, threshold):
            found[user_id] = {
                "judgements": int(judged[judge]),
                "mean_informativeness": round(float(np.mean(scores)), _DIGITS),
                "threshold": threshold,
                "dimensions": figures,
            }
    return found


def _already_handled(user_ids: list[int]) -> set[int]:
    """Annotators not to flag again: an open spammer flag, labeling already stopped, or a flag dismissed
    after their latest judgement (the reviewer has seen this evidence; new work earns a new look)."""
    flags = AnnotatorFlag.objects.filter(kind=FlagKind.SPAMMER, annotator_id__in=user_ids)
    open_flags = flags.filter(reviewed_at__isnull=True)
    stopped = AnnotatorProfile.objects.filter(user_id__in=user_ids, labeling_enabled=False)
    handled = set(open_flags.values_list("annotator_id", flat=True)) | set(stopped.values_list("user_id", flat=True))
    dismissed = dict(
        flags.filter(reviewed_at__isnull=False)
        .values("annotator_id")
        .annotate(last=Max("reviewed_at"))
        .values_list("annotator_id", "last")
    )
    latest = dict(
        Judgement.objects.filter(annotator_id__in=list(dismissed))
        .values("annotator_id")
        .annotate(last=Max("created_at"))
        .values_list("annotator_id", "last")
    )
    return handled | {user_id for user_id, at in dismissed.items() if latest.get(user_id) and at >= latest[user_id]}


def _flag_detail(figures: dict) -> str:
    return (
        f"Mean informativeness {figures['mean_informativeness']:.2f} over the four dimensions (flagged below "
        f"{figures['threshold']:.2f}) on {figures['judgements']} judgements: the answers barely depend on the "
        "images (near-random, or always the same side)."
    )


def spammers_flag(spammers: dict[int, dict], *, run: ReliabilityRun) -> int:
    """Open a spammer flag for each annotator found who is not handled already; how many were opened."""
    handled = _already_handled(list(spammers))
    opened = 0
    for user_id, figures in spammers.items():
        if user_id in handled:
            continue
        figures = {**figures, "run": run.pk}
        if annotator_flag_open(
            annotator_id=user_id, kind=FlagKind.SPAMMER, detail=_flag_detail(figures), figures=figures
        ):
            opened += 1
    return opened


def reliabilities_store(votes: Votes, fits: dict[str, DimensionFit], *, run: ReliabilityRun) -> int:
    """Reliabilities, priors and spammer flags in one transaction; returns how many flags were opened."""
    rows = _reliability_rows(votes, fits)
    with transaction.atomic():
        AnnotatorReliability.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["annotator", "dimension"],
            update_fields=["confusion", "accuracy", "informativeness", "judgements", "updated_at"],
        )
        for key, dimension in fits.items():
            _prior_store(key, dimension.fit)
        return spammers_flag(spammers_find(votes, fits), run=run)


def _last_fitted(*, exclude: int | None = None) -> ReliabilityRun | None:
    runs = ReliabilityRun.objects.filter(status=JobStatus.SUCCEEDED).exclude(pk=exclude)
    return runs.order_by("-finished_at", "-pk").first()


def _fit(run: ReliabilityRun) -> dict:
    fingerprint = judgements_fingerprint()
    previous = _last_fitted(exclude=run.pk)
    if previous and previous.metrics.get("fingerprint") == fingerprint and not run.config.get("force"):
        return {"metrics": {"fingerprint": fingerprint, "skipped": True, "same_as_run": previous.pk}}
    started = time.monotonic()
    votes = votes_read(on_rows=lambda read: job_progress(run, _READ_SHARE * read / max(fingerprint[0], 1)))
    read_at = time.monotonic()
    if not len(votes.items):
        return {"metrics": {"fingerprint": fingerprint, "skipped": False, "pairs": 0, "annotators": 0}}
    share = (1.0 - _READ_SHARE) / (len(DIMENSION_KEYS) + 1)
    fits = votes_fit(votes, on_dimension=lambda done: job_progress(run, _READ_SHARE + share * done))
    fitted_at = time.monotonic()
    flagged = reliabilities_store(votes, fits, run=run)
    metrics = {
        "fingerprint": fingerprint,
        "skipped": False,
        "pairs": votes.n_items,
        "annotators": len(votes.annotator_ids),
        "seconds": {
            "read": round(read_at - started, 2),
            "fit": round(fitted_at - read_at, 2),
            "write": round(time.monotonic() - fitted_at, 2),
        },
        "dimensions": {
            key: {
                "warm": dimension.warm,
                "iterations": dimension.fit.iterations,
                "converged": dimension.fit.converged,
                "prior": _rounded(dimension.fit.prior),
            }
            for key, dimension in fits.items()
        },
    }
    return {"judgements_used": len(votes.items), "annotators_flagged": flagged, "metrics": metrics}


def reliability_run_execute(*, run_id: int) -> ReliabilityRun:
    """Run a queued fit; safe to call twice (a running or finished run is left alone)."""
    return job_run(ReliabilityRun.objects.all(), run_id, _fit)


def reliability_run_retry(*, run_id: int) -> ReliabilityRun:
    return job_retry(ReliabilityRun.objects.all(), run_id, RELIABILITY_TASK)


def reliability_run_live() -> ReliabilityRun | None:
    """A queued or running fit that is not stale: one such run at a time is enough."""
    since = timezone.now() - RUN_STALE_AFTER
    live = ReliabilityRun.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING), created_at__gte=since)
    return live.order_by("-created_at").first()


def reliability_run_request(
    *, created_by: AbstractBaseUser | None = None, force: bool = False, enqueue: bool = True
) -> tuple[ReliabilityRun, bool]:
    """(run, created): the live run when there is one, otherwise a new one (its task sent on commit when
    `enqueue`). `force` fits even when no judgement changed since the last fit."""
    with transaction.atomic():
        live = reliability_run_live()
        if live is not None:
            return live, False
        run = ReliabilityRun(created_by=created_by, config={"force": force})
        run.full_clean()
        run.save()
        if enqueue:
            job_enqueue(RELIABILITY_TASK, run.pk)
    return run, True


def reliabilities_refresh() -> ReliabilityRun | None:
    """The scheduled door: no run at all (not even a row) while the judgements are as the last fit saw
    them, or while another fit is live; otherwise a new run, executed here. None when nothing ran."""
    previous = _last_fitted()
    if previous is not None and previous.metrics.get("fingerprint") == judgements_fingerprint():
        return None
    run, created = reliability_run_request(enqueue=False)
    return reliability_run_execute(run_id=run.pk) if created else None

"""Model-vs-consensus disagreement, from the latest succeeded pair scoring run (training.PairScore rows).

A pair's human label on a dimension is its majority answer: the one answer with more votes than each
other answer; a tie answer, or no single largest answer, gives no label and the dimension is left out.
The model is confident on a dimension when it gives MODEL_DISAGREEMENT_PROBABILITY or more to one image.

- a complete, non-adjudicated pair whose label the model confidently contradicts on some dimension goes
  to the disputes page (`model_disagreements`; the scoring run finds them once, the page checks them again);
- an annotator who, where the label and the model confidently agree, picks the other image at least
  CONTRADICTION_RATE of the time over CONTRADICTION_MIN_ANSWERS such answers gets a CONTRADICTS flag
  (`contradicting_annotators_flag`, at the end of each scoring run).

Only pairs the model was not trained on count: those of the dataset version its training run used are
left out. A checkpoint with no known training run is taken as trained on none of the platform's pairs.

annotation never imports training: the scoring run model is found by name, the scores through the
reverse relation `Pair.model_scores`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from itertools import islice

from django.conf import settings
from django.db.models import Case, Count, F, FilteredRelation, FloatField, Q, QuerySet, Value, When
from django.db.models.functions import Greatest

from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.flags import annotator_flag_open
from annotation.labeling.quality import CATEGORIES
from annotation.labeling.selectors import scoring_runs_succeeded
from annotation.models import AnnotatorFlag, FlagKind, Judgement, Pair

# An annotator is flagged when they pick the other image on at least this share of their answers where
# the label and the model confidently agree, over at least this many such answers (one answer = one
# judgement on one dimension): fewer say too little about a person.
CONTRADICTION_RATE = 0.5
CONTRADICTION_MIN_ANSWERS = 20
OPPOSITE = {"first": "second", "second": "first"}
PAIRS_PER_READ = 2000
# Candidates a scoring run keeps for the disputes page: far more than a reviewer works through between runs.
DISAGREEMENTS_KEPT = 5000


def latest_scoring_run():
    """The newest succeeded PairScoringRun (with its training run), or None."""
    return scoring_runs_succeeded().select_related("training_run").order_by("-finished_at", "-id").first()


def trained_version_id(run) -> int | None:
    """The dataset version the run's checkpoint was trained on; None when no training run is known."""
    return run.training_run.dataset_version_id if run.training_run_id else None


def _majority(key: str, side: str) -> Q:
    """The majority answer on dimension `key` is `side` (the count annotations of `scored_pairs`)."""
    others = [category for category in CATEGORIES if category != side]
    return Q(**{f"{key}_{side}__gt": F(f"{key}_{others[0]}")}) & Q(**{f"{key}_{side}__gt": F(f"{key}_{others[1]}")})


def scored_pairs(run, *, version_id: int | None) -> QuerySet[Pair]:
    """Complete pairs the run scored, not in `version_id`, annotated with the run's P(first) per dimension
    (`model_<key>`) and the vote counts (`<key>_<answer>`)."""
    probability = settings.MODEL_DISAGREEMENT_PROBABILITY
    pairs = Pair.objects.annotate(score=FilteredRelation("model_scores", condition=Q(model_scores__run=run)))
    confident = Q()
    for key in DIMENSION_KEYS:  # on no dimension, the pair can neither contradict nor confirm: not counted
        confident |= Q(**{f"score__{key}__gte": probability}) | Q(**{f"score__{key}__lte": 1.0 - probability})
    pairs = pairs.filter(confident, score__isnull=False, judgements_done__gte=F("judgements_required"))
    if version_id is not None:
        pairs = pairs.exclude(dataset_items__version_id=version_id)
    counts = {
        f"{key}_{category}": Count("judgements", filter=Q(**{f"judgements__{key}": category}))
        for key in DIMENSION_KEYS
        for category in CATEGORIES
    }
    pairs = pairs.annotate(**{f"model_{key}": F(f"score__{key}") for key in DIMENSION_KEYS}, **counts)
    contradiction = {
        f"contradicted_{key}": Case(
            When(_majority(key, "first"), then=1.0 - F(f"model_{key}")),
            When(_majority(key, "second"), then=F(f"model_{key}")),
            default=Value(0.0),
            output_field=FloatField(),
        )
        for key in DIMENSION_KEYS
    }
    agreement = {
        f"agreed_{key}": Case(
            When(_majority(key, "first") & Q(**{f"model_{key}__gte": probability}), then=Value("first")),
            When(_majority(key, "second") & Q(**{f"model_{key}__lte": 1.0 - probability}), then=Value("second")),
            default=Value(""),
        )
        for key in DIMENSION_KEYS
    }
    return pairs.annotate(**contradiction, **agreement)


def contradicted_pairs(run) -> QuerySet[Pair]:
    """The run's confidently contradicted complete pairs, not adjudicated, not trained on, most confident
    first; each carries `contradicted`: the largest probability the model gives an image the label did not
    choose. Over every judgement of every complete pair: seconds at 200,000 pairs, so a scoring run asks it
    once (`disagreement_candidates`) and the page re-checks only the pairs it found."""
    return (
        scored_pairs(run, version_id=trained_version_id(run))
        .filter(adjudication__isnull=True)
        .annotate(contradicted=Greatest(*(F(f"contradicted_{key}") for key in DIMENSION_KEYS)))
        .filter(contradicted__gte=settings.MODEL_DISAGREEMENT_PROBABILITY)
        .order_by("-contradicted", "id")
    )


def disagreement_candidates(run) -> list[int]:
    """At the end of a scoring run, for its metrics: the ids of its contradicted pairs (the most confident
    DISAGREEMENTS_KEPT). A pair completed after the run waits for the next one."""
    return list(contradicted_pairs(run).values_list("pk", flat=True)[:DISAGREEMENTS_KEPT])


def model_disagreements(*, limit: int = 50) -> tuple[object | None, list[Pair]]:
    """(the latest succeeded run, the pairs it contradicts still: its candidates checked again now, since
    an adjudication or a revised judgement may have settled some). Each pair also carries `contradicted_keys`,
    the dimensions where the model contradicts the label, besides `scored_pairs`' fields."""
    run = latest_scoring_run()
    if run is None:
        return None, []
    probability = settings.MODEL_DISAGREEMENT_PROBABILITY
    candidates = run.metrics.get("disagreements", [])
    pairs = contradicted_pairs(run).filter(pk__in=candidates)
    pairs = list(pairs.select_related("prompt", "image_first", "image_second", "adjudication")[:limit])
    for pair in pairs:
        pair.contradicted_keys = [key for key in DIMENSION_KEYS if getattr(pair, f"contradicted_{key}") >= probability]
    return run, pairs


def _agreed_labels(run, version_id: int | None) -> Iterator[dict[int, dict[str, str]]]:
    """Blocks of {pair id: {dimension: label}} where the label and the model confidently agree."""
    names = [f"agreed_{key}" for key in DIMENSION_KEYS]
    rows = scored_pairs(run, version_id=version_id).order_by("pk").values_list("pk", *names)
    stream = rows.iterator(chunk_size=PAIRS_PER_READ)
    while block := list(islice(stream, PAIRS_PER_READ)):
        labels = {pk: {key: label for key, label in zip(DIMENSION_KEYS, agreed, strict=True) if label}
                  for pk, *agreed in block}  # fmt: skip
        yield {pk: agreed for pk, agreed in labels.items() if agreed}


def contradiction_tallies(run, *, version_id: int | None) -> dict[int, list[int]]:
    """{annotator id: [answers where label and model confidently agree, of which the other image]}."""
    tallies: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for labels in _agreed_labels(run, version_id):
        judgements = Judgement.objects.filter(pair_id__in=labels).values_list(
            "pair_id", "annotator_id", *DIMENSION_KEYS
        )
        for pair_id, annotator_id, *answers in judgements.iterator(chunk_size=PAIRS_PER_READ):
            tally = tallies[annotator_id]
            for key, answer in zip(DIMENSION_KEYS, answers, strict=True):
                label = labels[pair_id].get(key)
                if label:
                    tally[0] += 1
                    tally[1] += answer == OPPOSITE[label]
    return dict(tallies)


def contradicting_annotators_flag(run) -> list[AnnotatorFlag]:
    """CONTRADICTS flags for the annotators who contradict label and model systematically; an annotator
    with an open flag of that kind keeps it (one open flag per annotator). Returns the flags created."""
    created = []
    for annotator_id, (answers, contradicted) in sorted(
        contradiction_tallies(run, version_id=trained_version_id(run)).items()
    ):
        rate = contradicted / answers
        if answers < CONTRADICTION_MIN_ANSWERS or rate < CONTRADICTION_RATE:
            continue
        figures = {"answers": answers, "contradicted": contradicted, "rate": round(rate, 4), "scoring_run": run.pk,
                   "probability": settings.MODEL_DISAGREEMENT_PROBABILITY}  # fmt: skip
        detail = (
            f"Picked the other image on {contradicted} of {answers} answers ({rate:.0%}) where the consensus and "
            f"pair scoring run {run.pk}'s model agreed with probability {figures['probability']} or more."
        )
        if flag := annotator_flag_open(
            annotator_id=annotator_id, kind=FlagKind.CONTRADICTS, detail=detail, figures=figures
        ):
            created.append(flag)
    return created

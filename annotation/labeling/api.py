"""DRF API of the labeling queue: thin doors onto annotation.labeling.queue."""

import logging
import uuid

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.auth_backend import LABEL_PERMISSION
from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling import queue
from annotation.labeling.selectors import annotator_counts, lease_payload, quality_figures
from mhp.inputs import JSONParser, api_id, is_id

logger = logging.getLogger(__name__)


class CanLabel(BasePermission):
    def has_permission(self, request, view) -> bool:
        # One query with the user (annotation.auth_backend): this runs twice per judgement.
        return request.user.is_authenticated and request.user.has_perm(LABEL_PERMISSION)


class ImageOut(serializers.Serializer):
    url = serializers.CharField()
    thumbnail_url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class LeasedPairOut(serializers.Serializer):
    pair_id = serializers.IntegerField()
    prompt = serializers.CharField()
    left = ImageOut()
    right = ImageOut()
    lease_expires_at = serializers.DateTimeField()


class NextIn(serializers.Serializer):
    exclude = serializers.ListField(
        child=api_id(),
        required=False,
        default=list,
        max_length=10,
        help_text="Pairs the client shows already (so the preloaded next one is a different pair).",
    )


class AnswersIn(serializers.Serializer):
    """One answer per dimension as seen on screen; the server maps it to the pair's canonical order."""

    aesthetics = serializers.ChoiceField(choices=queue.SCREEN_ANSWERS)
    detail = serializers.ChoiceField(choices=queue.SCREEN_ANSWERS)
    alignment = serializers.ChoiceField(choices=queue.SCREEN_ANSWERS)
    overall = serializers.ChoiceField(choices=queue.SCREEN_ANSWERS)


class SubmitIn(serializers.Serializer):
    pair_id = api_id()
    answers = AnswersIn()
    client_token = serializers.UUIDField(help_text="Made by the client once per submission; a retry reuses it.")
    duration_ms = serializers.IntegerField(min_value=0, max_value=24 * 3600 * 1000, required=False)
    next = NextIn(
        required=False,
        help_text="Also claim the next pair, as `next/` would, and return it: one round trip per judgement.",
    )


class JudgementOut(serializers.Serializer):
    id = serializers.IntegerField()
    pair_id = serializers.IntegerField()
    client_token = serializers.UUIDField()
    left_side = serializers.CharField()
    created = serializers.BooleanField()
    next = LeasedPairOut(
        required=False, allow_null=True, help_text="When `next` was asked: the pair claimed, or null if none."
    )
    next_error = serializers.CharField(
        required=False,
        help_text="When `next` was asked and the claim failed after the judgement was stored: why; call `next/`.",
    )


class RefusalOut(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(
        choices=["already_judged", "pair_full", "frozen", "lease_missing", "labeling_disabled", "refused"]
    )
    judgement = JudgementOut(required=False, help_text="With already_judged: the judgement that stands.")


class ReviseIn(serializers.Serializer):
    pair_id = api_id()
    answers = AnswersIn()


class PairIn(serializers.Serializer):
    pair_id = api_id()


class SkipIn(PairIn):
    reason = serializers.CharField(max_length=200)


class StatsOut(serializers.Serializer):
    today = serializers.IntegerField()
    total = serializers.IntegerField()


class CanViewQuality(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and request.user.has_perm("annotation.view_quality")


class DimensionFiguresOut(serializers.Serializer):
    units = serializers.IntegerField(help_text="Pairs with at least two judgements.")
    percent_agreement = serializers.FloatField(allow_null=True)
    fleiss_kappa = serializers.FloatField(allow_null=True)
    fleiss_raters = serializers.IntegerField(allow_null=True, help_text="Judgements per pair Fleiss' kappa used.")
    fleiss_units = serializers.IntegerField(help_text="Pairs with exactly fleiss_raters judgements.")
    krippendorff_alpha = serializers.FloatField(allow_null=True, help_text="Nominal; categories first/second/tie.")


class AnnotatorDimensionOut(serializers.Serializer):
    gold_accuracy = serializers.FloatField(allow_null=True)
    gold_judged = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True, help_text="Share of comparisons with others that agree.")
    agreement_comparisons = serializers.IntegerField()
    tie_rate = serializers.FloatField(allow_null=True)


def _per_dimension(child: type[serializers.Serializer], name: str) -> serializers.Serializer:
    fields = {key: child() for key in DIMENSION_KEYS}
    return type(name, (serializers.Serializer,), fields)()


class AnnotatorFiguresOut(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    excluded = serializers.BooleanField()
    judgements = serializers.IntegerField()
    median_ms = serializers.FloatField(allow_null=True)
    dimensions = _per_dimension(AnnotatorDimensionOut, "AnnotatorDimensionsOut")


class QualityOut(serializers.Serializer):
    judgements = serializers.IntegerField()
    pairs_judged = serializers.IntegerField()
    dimensions = _per_dimension(DimensionFiguresOut, "ProjectDimensionsOut")
    annotators = AnnotatorFiguresOut(many=True)


# Each refusal's status and the `code` a client can branch on.
_REFUSALS = (
    (queue.AlreadyJudged, status.HTTP_409_CONFLICT, "already_judged"),
    (queue.PairFull, status.HTTP_409_CONFLICT, "pair_full"),
    (queue.JudgementFrozen, status.HTTP_409_CONFLICT, "frozen"),
    (queue.LeaseMissing, status.HTTP_409_CONFLICT, "lease_missing"),
    (queue.LabelingDisabled, status.HTTP_403_FORBIDDEN, "labeling_disabled"),
    (queue.QueueError, status.HTTP_400_BAD_REQUEST, "refused"),
)


def _refused(error: queue.QueueError) -> Response:
    code, name = next((code, name) for kind, code, name in _REFUSALS if isinstance(error, kind))
    body = {"detail": str(error), "code": name}
    if isinstance(error, queue.AlreadyJudged):
        body["judgement"] = _judgement_body(error.judgement, created=False)
    return Response(body, status=code)


class NextPairView(APIView):
    permission_classes = [CanLabel]
    # Every annotator calls next and submit once per judgement: JSON only, no content negotiation.
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]

    @extend_schema(
        request=NextIn,
        responses={200: LeasedPairOut, 204: OpenApiResponse(description="Nothing to judge right now.")},
        summary="Claim the next pair (a lease of LEASE_SECONDS)",
    )
    def post(self, request: Request) -> Response:
        data = _next_in(request.data) or _valid(NextIn, request)
        try:
            lease = queue.pair_claim(annotator=request.user, exclude_pair_ids=tuple(data["exclude"]))
        except queue.QueueError as error:
            return _refused(error)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(lease_payload(lease))


SUBMIT_STATUSES = """201: stored. 200: a retry of a stored submission (same client_token): the stored judgement,
nothing new stored. 409 `already_judged`: you judged this pair before under another client_token; your first
answer stands (returned under `judgement`), this one is not stored. 409 `pair_full` / `lease_missing`: the
pair took all its judgements, or is not leased to you (released, expired and given away). 403
`labeling_disabled`. 400: malformed input. With `next`, a failure to claim the next pair never hides a stored
judgement: it answers 201/200 with `next_error` set."""


class SubmitView(APIView):
    permission_classes = [CanLabel]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]

    @extend_schema(
        request=SubmitIn,
        responses={201: JudgementOut, 200: JudgementOut, 409: RefusalOut, 403: RefusalOut, 400: RefusalOut},
        summary="Submit a judgement",
        description=SUBMIT_STATUSES,
    )
    def post(self, request: Request) -> Response:
        data = _submit_in(request.data) or _valid(SubmitIn, request)
        claim_next = data.pop("next", None)
        try:
            judgement, created = queue.judgement_submit(annotator=request.user, **data)
        except queue.QueueError as error:
            return _refused(error)
        body = _judgement_body(judgement, created=created)
        if claim_next is not None:
            body |= _next_payload(request.user, claim_next["exclude"])
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _judgement_body(judgement, *, created: bool) -> dict:  # JudgementOut
    return {
        "id": judgement.pk,
        "pair_id": judgement.pair_id,
        "client_token": str(judgement.client_token),
        "left_side": judgement.left_side,
        "created": created,
    }


def _next_payload(annotator, exclude: list[int]) -> dict:
    """`next`: the pair claimed after a submission, or None. A refusal or a database failure here (say
    labeling was just disabled, or the connection dropped) never hides the stored judgement: it is
    named in `next_error`, and the client's own `next/` call then gets the reason."""
    try:
        lease = queue.pair_claim(annotator=annotator, exclude_pair_ids=tuple(exclude))
    except queue.QueueError as error:
        return {"next": None, "next_error": str(error)}
    except DatabaseError:
        logger.exception("claiming the next pair after a stored judgement failed")
        return {"next": None, "next_error": "the next pair could not be claimed; ask for it again"}
    return {"next": lease_payload(lease) if lease is not None else None}


class ReviseView(APIView):
    permission_classes = [CanLabel]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]

    @extend_schema(
        request=ReviseIn,
        responses={200: JudgementOut, 409: RefusalOut, 400: RefusalOut},
        summary="Change my answers to a pair I judged",
        description="The same judgement with new answers (screen sides as the pair was shown). 409 `frozen` once "
        "the pair is in a frozen dataset version; 409 `lease_missing` when you have no judgement of it.",
    )
    def post(self, request: Request) -> Response:
        data = _valid(ReviseIn, request)
        try:
            judgement = queue.judgement_revise(annotator=request.user, **data)
        except queue.QueueError as error:
            return _refused(error)
        return Response(_judgement_body(judgement, created=False))


class ReleaseView(APIView):
    permission_classes = [CanLabel]

    @extend_schema(request=PairIn, responses={204: None}, summary="Give a leased pair back to the queue")
    def post(self, request: Request) -> Response:
        data = _valid(PairIn, request)
        queue.pair_lease_release(annotator=request.user, pair_id=data["pair_id"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class SkipView(APIView):
    permission_classes = [CanLabel]

    @extend_schema(request=SkipIn, responses={204: None}, summary="Skip a leased pair with a reason")
    def post(self, request: Request) -> Response:
        data = _valid(SkipIn, request)
        try:
            queue.pair_skip(annotator=request.user, pair_id=data["pair_id"], reason=data["reason"])
        except queue.QueueError as error:
            return _refused(error)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyStatsView(APIView):
    permission_classes = [CanLabel]

    @extend_schema(responses=StatsOut, summary="My judgement counts (today, total)")
    def get(self, request: Request) -> Response:
        return Response(annotator_counts(user=request.user))


class QualityView(APIView):
    permission_classes = [CanViewQuality]

    @extend_schema(responses=QualityOut, summary="Quality figures: per dimension and per annotator (reviewers)")
    def get(self, request: Request) -> Response:
        return Response(QualityOut(quality_figures()).data)


def _is_int(value, low: int | None = None, high: int | None = None) -> bool:
    return type(value) is int and (low is None or value >= low) and (high is None or value <= high)


def _next_in(data) -> dict | None:
    """NextIn's validated data for the plain shape clients send; None sends anything else to NextIn itself."""
    if not isinstance(data, dict) or not set(data) <= {"exclude"}:
        return None
    exclude = data.get("exclude", [])
    if type(exclude) is not list or len(exclude) > 10 or not all(is_id(item) for item in exclude):
        return None
    return {"exclude": exclude}


_SCREEN_ANSWERS = frozenset(queue.SCREEN_ANSWERS)
_DIMENSIONS = frozenset(DIMENSION_KEYS)
_SUBMIT_KEYS = frozenset(SubmitIn().fields)
_DURATION_MAX = SubmitIn().fields["duration_ms"].max_value


def _submit_in(data) -> dict | None:
    """SubmitIn's validated data when the body is exactly well formed (what the labeling page sends);
    None for anything else, which SubmitIn then validates, converts or refuses with its own messages.
    Each judgement is one call: skipping DRF's field machinery here saves a share of its CPU."""
    if not isinstance(data, dict) or not {"pair_id", "answers", "client_token"} <= set(data) <= _SUBMIT_KEYS:
        return None
    answers, token = data["answers"], data["client_token"]
    if not is_id(data["pair_id"]) or type(answers) is not dict or set(answers) != _DIMENSIONS:
        return None
    if not all(type(value) is str and value in _SCREEN_ANSWERS for value in answers.values()):
        return None
    if "duration_ms" in data and not _is_int(data["duration_ms"], 0, _DURATION_MAX):
        return None
    claim_next = _next_in(data["next"]) if "next" in data else None
    if "next" in data and claim_next is None:
        return None
    if type(token) is not str or len(token) != 36:
        return None
    try:
        client_token = uuid.UUID(token)
    except ValueError:
        return None
    validated = {"pair_id": data["pair_id"], "answers": dict(answers), "client_token": client_token}
    if "duration_ms" in data:
        validated["duration_ms"] = data["duration_ms"]
    if claim_next is not None:
        validated["next"] = claim_next
    return validated


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data

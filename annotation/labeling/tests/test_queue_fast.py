"""The labeling queue's fast paths: PostgreSQL functions, one-query user and permission, lean input parsing.

On PostgreSQL the queue's own tests (test_queue_service, test_queue_concurrency) exercise the SQL path
(test_queue_fast_orm.py runs them once more on the portable ORM path); here the fast paths are checked
against the code they stand in for.
"""

import re
import threading
import time
import uuid
from datetime import timedelta
from importlib import util as importlib_util
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.utils import timezone

from annotation import roles
from annotation.auth_backend import LabelingModelBackend
from annotation.labeling import queue
from annotation.labeling.api import NextIn, SubmitIn, _next_in, _submit_in
from annotation.labeling.queue import sql
from annotation.labeling.tests.labeling_factories import ANSWERS_LEFT, judged_by, make_pairs
from annotation.models import Judgement, Pair, PairLease, QueueFront
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db

# The pick's free-slot test, in each of the claim's six picks (two kinds x three regions).
_SLOT_CHECK = """
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required"""


def _claim_without_slot_check() -> str:
    claim = sql.source("pair_claim")
    assert claim.count(_SLOT_CHECK) == 6
    return claim.replace(_SLOT_CHECK, "")


def _definition(cursor, function: str) -> str:
    cursor.execute("SELECT pg_get_functiondef(%s::regproc)", [function])
    return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.parametrize("name", sql.FUNCTION_FILES)
def test_installed_function_equals_its_source(name):
    # The migrations install frozen copies; the text a reader finds in sql/ must be what runs. The
    # source is created in a scratch schema so that PostgreSQL prints both the same way (the test's
    # rollback drops it).
    with connection.cursor() as cursor:
        installed = _definition(cursor, f"public.mhp_{name}")
        cursor.execute("CREATE SCHEMA source_check; SET LOCAL search_path TO source_check")
        cursor.execute(sql.source(name))
        from_source = _definition(cursor, f"source_check.mhp_{name}")
    assert from_source.replace("source_check.", "public.", 1) == installed


def test_no_migration_imports_another():
    migrations = Path(importlib_util.find_spec("annotation.migrations").origin).parent
    for path in migrations.glob("*.py"):
        assert not re.search(r"import_module|importlib|from annotation\.migrations", path.read_text()), path.name


@pytest.mark.postgres
def test_a_pair_found_full_after_its_lock_is_stepped_over():
    # The pick's snapshot can miss a lease committed just before it locked the row; the fresh count
    # after the lock must catch it. A claim function whose pick ignores leases plays that stale
    # snapshot (DDL is transactional: the test's rollback restores the real function).
    with connection.cursor() as cursor:
        cursor.execute(_claim_without_slot_check())
    full, spare = make_pairs(2, required=1)
    holder, late = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    assert queue.pair_claim(annotator=holder).pair_id == full.pk
    lease = queue.pair_claim(annotator=late)
    assert lease.pair_id == spare.pk
    assert list(PairLease.objects.filter(pair=full).values_list("annotator", flat=True)) == [holder.pk]
    assert queue.pair_claim(annotator=make_user(roles.ANNOTATOR)) is None
    assert PairLease.objects.count() == 2


@pytest.mark.postgres
def test_a_partly_judged_pair_found_full_after_its_lock_is_stepped_over():
    # The same stale snapshot in a level's head: the full pair is stepped over, the next one taken.
    with connection.cursor() as cursor:
        cursor.execute(_claim_without_slot_check())
    full, spare = make_pairs(2, required=2)
    judged_by(make_user(roles.ANNOTATOR), [full, spare])
    holder, late = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    assert queue.pair_claim(annotator=holder).pair_id == full.pk
    assert queue.pair_claim(annotator=late).pair_id == spare.pk
    assert list(PairLease.objects.filter(pair=full).values_list("annotator", flat=True)) == [holder.pk]


def _front() -> int | None:
    return QueueFront.objects.filter(is_gold=False).values_list("fresh_from", flat=True).first()


def _set_front(fresh_from: int, *, age_seconds: float = 0) -> None:
    moved_at = timezone.now() - timedelta(seconds=age_seconds)
    QueueFront.objects.update_or_create(is_gold=False, defaults={"fresh_from": fresh_from, "moved_at": moved_at})


@pytest.mark.postgres
def test_claims_look_for_fresh_pairs_from_a_front_they_keep_themselves():
    first, second, third = make_pairs(3)

    def claim() -> int | None:
        lease = queue.pair_claim(annotator=make_user(roles.ANNOTATOR))
        return lease and lease.pair_id

    assert claim() == first.pk and _front() == first.pk
    # The walk starts at the front: unjudged pairs below it are not reached first...
    _set_front(third.pk)
    assert claim() == third.pk
    # ...until the front is older than FRONT_SECONDS and the next claim moves it.
    _set_front(third.pk, age_seconds=60)
    assert claim() == first.pk and _front() == first.pk
    # A front past every unjudged pair hides none for good: the last walk, over everything, finds them.
    _set_front(third.pk + 1)
    assert claim() == first.pk
    assert claim() == second.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sql_path", [True, False])
def test_a_retry_that_waited_for_the_pair_lock_gets_what_the_first_try_stored(sql_path, monkeypatch):
    # The first try still holds the pair's lock when the retry reads: the retry's snapshot predates
    # the first commit, and the pair it then locks is full. It must answer with the stored judgement.
    monkeypatch.setattr(queue, "USE_POSTGRES_SQL", sql_path)
    (pair,) = make_pairs(1, required=1)
    annotator = make_user(roles.ANNOTATOR)
    queue.pair_claim(annotator=annotator)
    token, stored, results = uuid.uuid4(), threading.Event(), {}

    def submit(name: str) -> None:
        try:
            results[name] = queue.judgement_submit(
                annotator=annotator, pair_id=pair.pk, answers=ANSWERS_LEFT, client_token=token
            )
        except queue.QueueError as error:
            results[name] = error

    def first_try() -> None:
        try:
            with transaction.atomic():
                Pair.objects.select_for_update().get(pk=pair.pk)
                submit("first")
                stored.set()
                time.sleep(0.5)
        finally:
            connection.close()

    def retry() -> None:
        stored.wait(10)
        try:
            submit("retry")
        finally:
            connection.close()

    threads = [threading.Thread(target=first_try), threading.Thread(target=retry)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (first, created), (again, created_again) = results["first"], results["retry"]
    assert created and not created_again and again.pk == first.pk
    assert Judgement.objects.count() == 1 and Pair.objects.get(pk=pair.pk).judgements_done == 1


@pytest.mark.postgres
def test_a_claim_inside_a_callers_transaction_keeps_the_durable_commit():
    make_pairs(1)
    with transaction.atomic():
        assert queue.pair_claim(annotator=make_user(roles.ANNOTATOR)) is not None
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_only_the_claim_itself_commits_without_waiting_for_the_disk():
    (pair,) = make_pairs(1)
    annotator = make_user(roles.ANNOTATOR)
    lease = queue.pair_claim(annotator=annotator)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    judgement, created = queue.judgement_submit(
        annotator=annotator, pair_id=lease.pair_id, answers=ANSWERS_LEFT, client_token=uuid.uuid4()
    )
    assert created and Pair.objects.get(pk=pair.pk).judgements_done == 1


def test_submitting_to_a_pair_that_does_not_exist_is_refused():
    annotator = make_user(roles.ANNOTATOR)
    with pytest.raises(queue.LeaseMissing):
        queue.judgement_submit(annotator=annotator, pair_id=987654, answers=ANSWERS_LEFT, client_token=uuid.uuid4())
    assert not Judgement.objects.exists()


def test_a_claimed_lease_carries_what_the_form_shows():
    (pair,) = make_pairs(1)
    lease = queue.pair_claim(annotator=make_user(roles.ANNOTATOR))
    stored = PairLease.objects.select_related("pair__prompt", "pair__image_first", "pair__image_second").get()
    assert (lease.pk, lease.pair_id, lease.left_side, lease.expires_at) == (
        stored.pk,
        stored.pair_id,
        stored.left_side,
        stored.expires_at,
    )
    assert lease.pair.prompt.text == pair.prompt.text and not lease.pair.is_gold
    assert lease.pair.image_first.file.name == stored.pair.image_first.file.name
    assert lease.pair.image_second.width == stored.pair.image_second.width


def _session_user(user):
    """The user as the labeling API gets it: loaded by the backend from the session's user id."""
    return LabelingModelBackend().get_user(user.pk)


@pytest.mark.parametrize("role", [None, roles.ANNOTATOR, roles.REVIEWER, roles.ADMIN])
@pytest.mark.parametrize("perm", ["annotation.label_pairs", "annotation.view_quality", "annotation.nothing"])
def test_the_backends_one_query_user_agrees_with_model_backend(role, perm):
    user = make_user(role) if role else make_user()
    assert _session_user(user).has_perm(perm) == type(user).objects.get(pk=user.pk).has_perm(perm)


@pytest.mark.postgres  # the one-query user is a PostgreSQL function
def test_the_labeling_permission_comes_with_the_user_in_one_query(django_assert_num_queries):
    user = make_user(roles.ANNOTATOR)
    with django_assert_num_queries(1):
        loaded = _session_user(user)
        assert loaded.has_perm("annotation.label_pairs") and loaded.username == user.username


def test_the_backend_sees_direct_grants_superusers_and_inactive_users():
    user = make_user()
    assert not _session_user(user).has_perm("annotation.label_pairs")
    user.user_permissions.add(Permission.objects.get(codename="label_pairs", content_type__app_label="annotation"))
    assert _session_user(user).has_perm("annotation.label_pairs")
    superuser = make_user()
    type(superuser).objects.filter(pk=superuser.pk).update(is_superuser=True)
    assert LabelingModelBackend().has_perm(_session_user(superuser), "annotation.label_pairs")
    inactive = make_user(roles.ANNOTATOR)
    type(inactive).objects.filter(pk=inactive.pk).update(is_active=False)
    assert _session_user(inactive) is None
    assert _session_user(type(user)(pk=987654)) is None


_TOKEN = "0b5f6a3e-51c2-4e0b-9d39-2b7cf5b1f0a1"
_SUBMIT_BODIES = [
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "duration_ms": 0},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "duration_ms": 24 * 3600 * 1000},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "duration_ms": 24 * 3600 * 1000 + 1},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "duration_ms": -1},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "duration_ms": 1.5},
    {"pair_id": "7", "answers": ANSWERS_LEFT, "client_token": _TOKEN},
    {"pair_id": True, "answers": ANSWERS_LEFT, "client_token": _TOKEN},
    {"pair_id": None, "answers": ANSWERS_LEFT, "client_token": _TOKEN},
    {"pair_id": 7, "answers": {**ANSWERS_LEFT, "overall": "first"}, "client_token": _TOKEN},
    {"pair_id": 7, "answers": {**ANSWERS_LEFT, "extra": "left"}, "client_token": _TOKEN},
    {"pair_id": 7, "answers": {"overall": "left"}, "client_token": _TOKEN},
    {"pair_id": 7, "answers": "left", "client_token": _TOKEN},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN.replace("-", "")},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": "not-a-token-not-a-token-not-a-token!"},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": 12},
    {"pair_id": 7, "answers": ANSWERS_LEFT},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "unknown": 1},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "next": {"exclude": [8]}},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "next": {}},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "next": {"exclude": ["8"]}},
    {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "next": []},
    [],
]


@pytest.mark.parametrize("body", _SUBMIT_BODIES)
def test_the_lean_submit_parser_accepts_only_what_submit_in_accepts_and_the_same_way(body):
    fast = _submit_in(body)
    serializer = SubmitIn(data=body)
    if fast is None:
        return  # SubmitIn decides (it converts, or it refuses with its own messages)
    assert serializer.is_valid(), serializer.errors
    assert fast == {**serializer.validated_data, "answers": dict(serializer.validated_data["answers"])}


@pytest.mark.parametrize(
    "body", [{}, {"exclude": []}, {"exclude": [1, 2]}, {"exclude": list(range(11))}, {"exclude": ["3"]}, {"x": 1}]
)
def test_the_lean_next_parser_accepts_only_what_next_in_accepts_and_the_same_way(body):
    fast = _next_in(body)
    serializer = NextIn(data=body)
    if fast is None:
        return
    assert serializer.is_valid(), serializer.errors
    assert fast == dict(serializer.validated_data)


def test_the_lean_parsers_take_the_labeling_pages_requests():
    assert _next_in({"exclude": [4]}) == {"exclude": [4]}
    body = {"pair_id": 7, "answers": ANSWERS_LEFT, "client_token": _TOKEN, "duration_ms": 900}
    assert _submit_in(body) == {**body, "client_token": uuid.UUID(_TOKEN)}
    with_next = {**body, "next": {"exclude": [8]}}
    assert _submit_in(with_next) == {**with_next, "client_token": uuid.UUID(_TOKEN)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_seeded_pairs_are_analysed_so_the_first_claims_are_planned_on_them():
    from annotation.images.services.pair_seed import pairs_seed

    def estimated_rows() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'annotation_pair'")
            return cursor.fetchone()[0]

    assert estimated_rows() <= 0  # never analysed: PostgreSQL does not know the table's size
    pairs_seed(pairs=60, prompts=10, generators=3)
    assert estimated_rows() == Pair.objects.count() == 60


@pytest.mark.postgres
def test_the_claim_never_sorts_nor_compiles():
    # Without statistics the planner fetched every open pair and tested its leases before sorting; the
    # cost of a disabled sort would then switch JIT on (both measured in the README's queue figures).
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = 'mhp_pair_claim'")
        (config,) = cursor.fetchone()
    assert set(config) == {"enable_sort=off", "enable_bitmapscan=off", "jit=off"}


def _hold_row_lock(pair_id: int, seconds: float, locked: threading.Event) -> threading.Thread:
    """Another connection's transaction that holds the pair's row lock for `seconds`, as a submit does."""

    def hold() -> None:
        try:
            with transaction.atomic():
                Pair.objects.select_for_update().get(pk=pair_id)
                locked.set()
                time.sleep(seconds)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(10)
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sql_path", [True, False])
def test_a_claim_waits_out_a_short_row_lock_on_the_last_pair_instead_of_answering_empty(sql_path, monkeypatch):
    # The queue's last open pair is being submitted by someone else: its row is locked for a moment, and a
    # claim that skips locked rows would tell this annotator the queue is empty.
    monkeypatch.setattr(queue, "USE_POSTGRES_SQL", sql_path)
    (pair,) = make_pairs(1, required=2)
    annotator = make_user(roles.ANNOTATOR)
    holder = _hold_row_lock(pair.pk, seconds=0.1, locked=threading.Event())
    lease = queue.pair_claim(annotator=annotator)
    holder.join()
    assert lease is not None and lease.pair_id == pair.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sql_path", [True, False])
def test_a_claim_gives_up_on_a_pair_locked_for_long_and_an_empty_queue_answers_at_once(sql_path, monkeypatch):
    monkeypatch.setattr(queue, "USE_POSTGRES_SQL", sql_path)
    pauses = []
    # The queue module's own `time` only: other threads' sleeps are not counted.
    counted = SimpleNamespace(sleep=lambda seconds: pauses.append(seconds) or time.sleep(seconds))
    monkeypatch.setattr(queue, "time", counted)
    (pair,) = make_pairs(1, required=1)
    annotator, other = make_user(roles.ANNOTATOR), make_user(roles.ANNOTATOR)
    holder = _hold_row_lock(pair.pk, seconds=3, locked=threading.Event())
    started = time.monotonic()
    assert queue.pair_claim(annotator=annotator) is None
    waited = time.monotonic() - started
    holder.join()
    # Every pause taken, then None: never a wait on the lock itself, which is held for 3 s.
    assert pauses == list(queue._BUSY_PAUSES) and waited < 2.5
    # Full once leased to someone else: nothing eligible, so None at once.
    assert queue.pair_claim(annotator=other).pair_id == pair.pk
    pauses.clear()
    assert queue.pair_claim(annotator=annotator) is None and pauses == []

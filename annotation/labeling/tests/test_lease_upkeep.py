"""The lease table's periodic upkeep: expired leases purged, the table vacuumed on PostgreSQL."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation import roles
from annotation.labeling.tasks import lease_table_upkeep
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import PairLease
from annotation.tests.factories import make_user


def _vacuum_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s", [PairLease._meta.db_table])
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_upkeep_purges_expired_leases_and_vacuums_the_table():
    expired_pair, live_pair = make_pairs(2)
    annotator, now = make_user(roles.ANNOTATOR), timezone.now()
    PairLease.objects.create(pair=expired_pair, annotator=annotator, expires_at=now - timedelta(seconds=1))
    live = PairLease.objects.create(pair=live_pair, annotator=annotator, expires_at=now + timedelta(minutes=5))
    before = _vacuum_count()
    assert lease_table_upkeep.delay().get() == 1
    assert list(PairLease.objects.values_list("pk", flat=True)) == [live.pk]
    assert _vacuum_count() == before + 1


@pytest.mark.django_db
def test_upkeep_inside_a_transaction_only_purges():
    (pair,) = make_pairs(1)
    PairLease.objects.create(pair=pair, annotator=make_user(roles.ANNOTATOR), expires_at=timezone.now())
    assert lease_table_upkeep() == 1 and not PairLease.objects.exists()

"""A frozen dataset version and its items are read-only everywhere: admin pages, the ORM, raw SQL."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_pair, make_user
from datasets import sql
from datasets.models import DatasetItem, DatasetStatus, DatasetVersion, Split
from datasets.services.freeze import FreezeOptions, dataset_freeze
from datasets.tests.factories import JudgedPairs

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen():
    judged = JudgedPairs(annotators=3)
    for pair in judged.prompt_pairs(2):
        judged.judge_all(pair, ["first", "second", "first"])
    return dataset_freeze(name="frozen-v1", options=FreezeOptions(val=0, test=0))


def _snapshot(version) -> tuple:
    items = sorted(DatasetItem.objects.filter(version=version).values_list("id", "pair_id", "split", "labels"))
    return DatasetVersion.objects.values().get(pk=version.pk), items


def _refused(change) -> None:
    with pytest.raises(IntegrityError, match="frozen"), transaction.atomic():
        change()


ORM_CHANGES = {
    "rename-version": lambda v: DatasetVersion.objects.filter(pk=v.pk).update(name="renamed"),
    "save-version": lambda v: DatasetVersion.objects.get(pk=v.pk).save(),
    "delete-version": lambda v: DatasetVersion.objects.filter(pk=v.pk).delete(),
    "save-item": lambda v: _item_saved(v),
    "update-items": lambda v: DatasetItem.objects.filter(version=v).update(split=Split.TEST),
    "delete-item": lambda v: DatasetItem.objects.filter(version=v).first().delete(),
    "add-item": lambda v: DatasetItem.objects.create(
        version=v, pair=make_pair(), split=Split.TRAIN, labels={}, annotator_count=3, agreement=1.0
    ),
    "raw-sql": lambda v: connection.cursor().execute("UPDATE datasets_datasetitem SET labels = '{}'"),
}


def _item_saved(version) -> None:
    item = DatasetItem.objects.filter(version=version).first()
    item.split = Split.VAL
    item.save()


# SQLite's guards leave deletion to the admin and the services (a flush must empty the tables there).
_POSTGRES_ONLY = {"delete-version", "delete-item"}


@pytest.mark.parametrize(
    "case", [pytest.param(case, marks=pytest.mark.postgres) if case in _POSTGRES_ONLY else case for case in ORM_CHANGES]
)
def test_the_database_refuses_every_change_to_a_frozen_version(frozen, case):
    before = _snapshot(frozen)
    _refused(lambda: ORM_CHANGES[case](frozen))
    assert _snapshot(frozen) == before


def test_a_version_still_being_written_is_not_guarded():
    version = DatasetVersion.objects.create(name="draft", status=DatasetStatus.FREEZING)
    item = DatasetItem.objects.create(
        version=version, pair=make_pair(), split=Split.TRAIN, labels={}, annotator_count=3, agreement=1.0
    )
    item.split = Split.TEST
    item.save()
    version.delete()
    assert not DatasetVersion.objects.exists()


@pytest.mark.postgres
@pytest.mark.parametrize("name", sql.FUNCTION_FILES)
def test_installed_function_equals_its_source(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef(%s::regproc)", [f"public.mhp_{name}"])
        installed = cursor.fetchone()[0]
        cursor.execute("CREATE SCHEMA source_check; SET LOCAL search_path TO source_check")
        cursor.execute(sql.source(name))
        cursor.execute("SELECT pg_get_functiondef(%s::regproc)", [f"source_check.mhp_{name}"])
        from_source = cursor.fetchone()[0]
    assert from_source.replace("source_check.", "public.", 1) == installed


def test_the_admin_shows_a_frozen_version_and_its_items_read_only(client, frozen):
    client.force_login(make_user(roles.ADMIN))
    before = _snapshot(frozen)
    change = reverse("admin:datasets_datasetversion_change", args=[frozen.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(change, {"name": "renamed", "description": "x"}).status_code == 403
    assert (
        client.post(reverse("admin:datasets_datasetversion_delete", args=[frozen.pk]), {"post": "yes"}).status_code
        == 403
    )
    item = DatasetItem.objects.filter(version=frozen).first()
    item_change = reverse("admin:datasets_datasetitem_change", args=[item.pk])
    assert client.get(item_change).status_code == 200
    assert client.post(item_change, {"split": "test"}).status_code == 403
    assert client.post(reverse("admin:datasets_datasetitem_delete", args=[item.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:datasets_datasetitem_add")).status_code == 403
    changelist = reverse("admin:datasets_datasetitem_changelist")
    response = client.post(changelist, {"action": "delete_selected", "_selected_action": [item.pk], "post": "yes"})
    assert response.status_code in (200, 302, 403)
    assert _snapshot(frozen) == before

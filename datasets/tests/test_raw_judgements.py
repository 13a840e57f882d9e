"""Raw judgements in every version and export, and the `dawid-skene` labels of a freeze.

One scene throughout: four annotators (the fourth excluded), a complete pair, a complete adjudicated pair,
a pair short of judgements, and a gold pair.
"""

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.urls import reverse

from annotation import roles
from annotation.dimensions import DIMENSION_KEYS
from annotation.labeling.consensus import CLASS_INDEX, CLASSES, dawid_skene
from annotation.models import Adjudication, Judgement, Pair
from annotation.tests.factories import make_user
from datasets.models import DatasetItem, DatasetJudgement, DatasetStatus, DatasetVersion
from datasets.pseudonyms import annotator_pseudonym
from datasets.services import raw_judgements
from datasets.services.freeze import FreezeOptions, dataset_freeze
from datasets.tests.factories import JudgedPairs, exclude_annotator

pytestmark = pytest.mark.django_db

# Answers per annotator (a, b, c, excluded d) and pair, as (aesthetics, detail, alignment, overall).
_ANSWERS = {
    "complete": ("ffsf", "fsst", "tfsf", "ssss"),
    "other": ("sstt", "ssft", "stst", "ffff"),
    "adjudicated": ("fsft", "sfts", "tsfs", "tttt"),
    "incomplete": ("ftsf", "fftt", None, "ssss"),
    "gold": ("ffff", "ffsf", "tfff", None),
}
_CHOICE = {"f": "first", "s": "second", "t": "tie"}
_ADJUDICATION = {"aesthetics": "second", "detail": "first", "alignment": "tie", "overall": "second"}


class Scene:
    def __init__(self) -> None:
        judged = JudgedPairs(annotators=4)
        self.annotators = judged.annotators
        self.excluded = self.annotators[3]
        self.pairs = dict(zip(_ANSWERS, judged.prompt_pairs(len(_ANSWERS)), strict=True))
        for name, answers in _ANSWERS.items():
            for index, (annotator, letters) in enumerate(zip(self.annotators, answers, strict=True)):
                if letters is None:
                    continue
                choices = {key: _CHOICE[letter] for key, letter in zip(DIMENSION_KEYS, letters, strict=True)}
                Judgement.objects.create(
                    pair=self.pairs[name], annotator=annotator, left_side=("first", "second")[index % 2],
                    duration_ms=1000 + 17 * index, **choices,
                )  # fmt: skip
        Pair.objects.filter(pk=self.pairs["gold"].pk).update(is_gold=True)
        Adjudication.objects.create(pair=self.pairs["adjudicated"], reviewer=make_user(), **_ADJUDICATION)
        exclude_annotator(self.excluded)

    def counted(self):
        return Judgement.objects.exclude(annotator=self.excluded).order_by("id")


@pytest.fixture
def scene() -> Scene:
    return Scene()


def _freeze(name: str, labels: str = "majority") -> DatasetVersion:
    return dataset_freeze(name=name, options=FreezeOptions.from_input(labels=labels, val="0", test="0"))


def _expected_fit(scene: Scene) -> tuple[np.ndarray, dict]:
    """consensus.dawid_skene per dimension on every counted judgement, built here from the ORM."""
    rows = list(scene.counted().values_list("pair_id", "annotator_id", *DIMENSION_KEYS))
    pair_ids, items = np.unique([row[0] for row in rows], return_inverse=True)
    _, judges = np.unique([row[1] for row in rows], return_inverse=True)
    fits = {
        key: dawid_skene(items, judges, np.array([CLASS_INDEX[row[2 + d]] for row in rows]))
        for d, key in enumerate(DIMENSION_KEYS)
    }
    return pair_ids, fits


def test_dawid_skene_freeze_writes_the_fit_posteriors(scene):
    call_command("freeze_dataset", "ds", "--labels", "dawid-skene", "--val", "0", "--test", "0", verbosity=0)
    version = DatasetVersion.objects.get(name="ds")

    pair_ids, fits = _expected_fit(scene)
    assert set(pair_ids) == {pair.pk for pair in scene.pairs.values()}  # incomplete and gold pairs too
    items = {item.pair_id: item for item in DatasetItem.objects.filter(version=version)}
    assert set(items) == {scene.pairs[name].pk for name in ("complete", "other", "adjudicated")}
    overall_classes = []
    for name in ("complete", "other"):
        index = list(pair_ids).index(scene.pairs[name].pk)
        for key, fit in fits.items():
            p_first, p_tie, p_second = fit.posteriors[index]
            assert items[scene.pairs[name].pk].labels[key] == pytest.approx([p_first + p_tie / 2, p_second + p_tie / 2])
        overall_classes.append(CLASSES[int(np.argmax(fits["overall"].posteriors[index]))])
    one_hot = {"first": [1.0, 0.0], "second": [0.0, 1.0], "tie": [0.5, 0.5]}
    assert items[scene.pairs["adjudicated"].pk].labels == {k: one_hot[v] for k, v in _ADJUDICATION.items()}

    assert version.config["mode"] == "dawid-skene"
    figures = version.stats["dawid_skene"]
    assert (figures["pairs"], figures["annotators"], figures["judgements"]) == (5, 3, scene.counted().count())
    for key, fit in fits.items():
        assert figures[key]["iterations"] == fit.iterations and figures[key]["converged"] == fit.converged
        assert figures[key]["prior"] == pytest.approx(dict(zip(CLASSES, fit.prior.tolist(), strict=True)), abs=1e-6)
    expected_counts = {c: (overall_classes + ["second"]).count(c) for c in set(overall_classes) | {"second"}}
    assert version.stats["labels"]["train"]["overall"] == expected_counts  # argmax, and the adjudication


def test_the_version_keeps_every_counted_judgement(scene, monkeypatch):
    monkeypatch.setattr(raw_judgements, "ANNOTATOR_BATCH", 2)  # three counted annotators: two INSERTs
    version = _freeze("v1")
    stored = DatasetJudgement.objects.filter(version=version)
    assert stored.count() == version.stats["judgements"]["rows"] == scene.counted().count() == 14
    assert version.stats["judgements"] == {"rows": 14, "pairs": 5, "in_version": 9, "annotators": 3}
    rows = {(row.pair_id, row.annotator): row for row in stored}
    in_version = {scene.pairs[name].pk for name in ("complete", "other", "adjudicated")}
    for judgement in scene.counted():
        row = rows[(judgement.pair_id, annotator_pseudonym(judgement.annotator_id))]
        assert {k: getattr(row, k) for k in (*DIMENSION_KEYS, "left_side", "duration_ms", "created_at")} == {
            k: getattr(judgement, k) for k in (*DIMENSION_KEYS, "left_side", "duration_ms", "created_at")
        }
        assert row.split == ("train" if judgement.pair_id in in_version else "")
    assert annotator_pseudonym(scene.excluded.pk) not in {annotator for _, annotator in rows}


def test_pseudonyms_are_stable_distinct_and_reveal_nobody(scene):
    first, second = _freeze("v1"), _freeze("v2", labels="soft")
    by_version = [
        set(DatasetJudgement.objects.filter(version=v).values_list("pair_id", "annotator")) for v in (first, second)
    ]
    assert by_version[0] == by_version[1]
    pseudonyms = {annotator_pseudonym(user.pk) for user in scene.annotators}
    assert len(pseudonyms) == 4 and all(p.startswith("a-") and len(p) == 14 for p in pseudonyms)
    stored = set(DatasetJudgement.objects.values_list("annotator", flat=True))
    assert stored == pseudonyms - {annotator_pseudonym(scene.excluded.pk)}
    for user in scene.annotators:
        mine = annotator_pseudonym(user.pk)
        # Neither the username nor the id, nor a hash anyone could compute from the id without the key.
        assert user.username not in mine and mine != f"a-{user.pk}"
        assert hashlib.sha256(str(user.pk).encode()).hexdigest()[:12] not in mine
        with override_settings(SECRET_KEY="another-key-" + "x" * 50):
            assert annotator_pseudonym(user.pk) != mine


def _read_judgements(out: Path) -> dict[str, list[dict]]:
    table = pq.read_table(out / "judgements.parquet").to_pylist()
    for row in table:
        row["created_at"] = row["created_at"].isoformat()
    return {
        "jsonl": [json.loads(line) for line in (out / "judgements.jsonl").read_text().splitlines()],
        "parquet": table,
        "webdataset": [json.loads(line) for line in (out / "webdataset" / "judgements.jsonl").read_text().splitlines()],
    }


def test_every_export_format_carries_the_raw_judgements(scene, tmp_path):
    version = _freeze("v1")
    call_command("export_dataset", "v1", "--format", "jsonl,parquet,webdataset", "--out", tmp_path, verbosity=0)

    pairs = {row["pair_id"]: row for row in map(json.loads, (tmp_path / "pairs.jsonl").read_text().splitlines())}
    expected = []
    for judgement in scene.counted().select_related("pair__image_first", "pair__image_second"):
        pair = judgement.pair
        split = "train" if pair.pk in pairs else None
        expected.append({
            "pair_id": pair.pk, "image_first": pair.image_first.file.name, "image_second": pair.image_second.file.name,
            "annotator": annotator_pseudonym(judgement.annotator_id), **judgement.choices(),
            "left_side": judgement.left_side, "duration_ms": judgement.duration_ms,
            "created_at": judgement.created_at.isoformat(), "in_version": split is not None, "split": split,
        })  # fmt: skip
    expected.sort(key=lambda row: (row["pair_id"], row["annotator"]))
    for pair_id, row in pairs.items():  # the images are named as the pair rows name them
        assert {(r["image_first"], r["image_second"]) for r in expected if r["pair_id"] == pair_id} == {
            (row["image_first"], row["image_second"])
        }
    for exported in _read_judgements(tmp_path).values():
        assert exported == expected
        assert list(exported[0]) == list(expected[0])  # column order as documented
    incomplete = scene.pairs["incomplete"].pk
    assert sum(row["pair_id"] == incomplete and not row["in_version"] for row in expected) == 2
    assert annotator_pseudonym(scene.excluded.pk) not in {row["annotator"] for row in expected}

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["judgements"] == version.stats["judgements"]
    assert manifest["judgement_columns"] == list(expected[0])
    listed = {entry["path"] for entry in manifest["files"]}
    assert {"judgements.jsonl", "judgements.parquet", "webdataset/judgements.jsonl"} <= listed
    with tarfile.open(tmp_path / "webdataset" / "train-000000.tar") as tar:
        assert len(tar.getnames()) == 3 * len(pairs)  # the shards hold pairs only


def _stored(version) -> list[tuple]:
    return sorted(DatasetJudgement.objects.filter(version=version).values_list())


CHANGES = {
    "update": lambda v: DatasetJudgement.objects.filter(version=v).update(overall="tie"),
    "save": lambda v: _saved(DatasetJudgement.objects.filter(version=v).first()),
    "raw-sql": lambda v: connection.cursor().execute("UPDATE datasets_datasetjudgement SET duration_ms = 1"),
    "add": lambda v: DatasetJudgement.objects.create(
        version=v,
        pair=Pair.objects.first(),
        annotator="a-000000000000",
        aesthetics="tie",
        detail="tie",
        alignment="tie",
        overall="tie",
        left_side="first",
        duration_ms=1,
        created_at=v.frozen_at,
    ),  # fmt: skip
    "delete": lambda v: DatasetJudgement.objects.filter(version=v).delete(),
    "delete-raw-sql": lambda v: connection.cursor().execute("DELETE FROM datasets_datasetjudgement"),
}


def _saved(row) -> None:
    row.split = "test"
    row.save()


# SQLite's guards leave deletion to the admin and the services, as for items (a flush empties row by row).
_POSTGRES_ONLY = {"delete", "delete-raw-sql"}


@pytest.mark.parametrize(
    "case", [pytest.param(case, marks=pytest.mark.postgres) if case in _POSTGRES_ONLY else case for case in CHANGES]
)
def test_the_database_refuses_changes_to_frozen_raw_judgements(scene, case):
    version = _freeze("v1")
    before = _stored(version)
    refusal = "raw judgements of a frozen dataset version never change"
    with pytest.raises(IntegrityError, match=refusal), transaction.atomic():
        CHANGES[case](version)
    assert _stored(version) == before


def test_the_admin_shows_raw_judgements_read_only(client, scene):
    version = _freeze("v1")
    before = _stored(version)
    client.force_login(make_user(roles.ADMIN))
    row = DatasetJudgement.objects.filter(version=version).first()
    change = reverse("admin:datasets_datasetjudgement_change", args=[row.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get(reverse("admin:datasets_datasetjudgement_changelist")).status_code == 200
    assert client.post(change, {"overall": "tie"}).status_code == 403
    assert (
        client.post(reverse("admin:datasets_datasetjudgement_delete", args=[row.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert client.get(reverse("admin:datasets_datasetjudgement_add")).status_code == 403
    assert _stored(version) == before


def test_a_bad_labels_choice_is_refused_and_changes_nothing(admin_client, scene):
    with pytest.raises(CommandError, match=r"invalid choice: 'dawid'.*dawid-skene"):
        call_command("freeze_dataset", "bad", "--labels", "dawid", verbosity=0)
    page = admin_client.post(
        reverse("admin:datasets_datasetversion_freeze"), {"name": "bad", "labels": "dawid", "seed": "0"}
    )
    assert page.status_code == 400 and "Select a valid choice" in page.content.decode()
    assert not DatasetVersion.objects.exists() and not DatasetJudgement.objects.exists()


def test_the_freeze_page_offers_dawid_skene(admin_client, scene, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:datasets_datasetversion_freeze"),
            {"name": "from-page", "labels": "dawid-skene", "seed": "0", "val": "0", "test": "0"},
        )
    assert response.status_code == 302
    version = DatasetVersion.objects.get(name="from-page")
    assert version.config["mode"] == "dawid-skene" and version.status == DatasetStatus.FROZEN
    assert version.stats["dawid_skene"]["judgements"] == 14

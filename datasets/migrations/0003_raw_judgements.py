"""Raw judgements snapshotted into each version (DatasetJudgement), frozen like its items.

The guard follows 0002's: PostgreSQL runs datasets/sql/dataset_judgement_frozen_guard.sql (frozen copy in
migrations/sql/), refusing any insert, update or delete of a frozen version's rows; SQLite gets plain
triggers for inserts and updates, deletion left to the admin and services (SQLite has no TRUNCATE: a test's
flush deletes row by row). Training 0004 gives the admin role the new model's permissions (the admin
pages show the rows read-only).
"""

from pathlib import Path

import django.db.models.deletion
from django.db import migrations, models

_SQL = Path(__file__).parent / "sql"
_FUNCTION = "mhp_dataset_judgement_frozen_guard"
_TABLE = "datasets_datasetjudgement"
_FROZEN_VERSION = "(SELECT status FROM datasets_datasetversion WHERE id = {row}.version_id) = 'frozen'"
_SQLITE_TRIGGERS = {
    "judgement_insert": f"BEFORE INSERT ON {_TABLE} WHEN {_FROZEN_VERSION.format(row='NEW')}",
    "judgement_update": f"BEFORE UPDATE ON {_TABLE} WHEN {_FROZEN_VERSION.format(row='OLD')} "
    f"OR {_FROZEN_VERSION.format(row='NEW')}",
}
_MESSAGE = "the raw judgements of a frozen dataset version never change"


def create_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute((_SQL / "0003_dataset_judgement_frozen_guard.sql").read_text(), params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {_FUNCTION} BEFORE INSERT OR UPDATE OR DELETE ON {_TABLE} "
            f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}();"
        )
    elif schema_editor.connection.vendor == "sqlite":
        for name, when in _SQLITE_TRIGGERS.items():
            schema_editor.execute(
                f"CREATE TRIGGER mhp_frozen_{name} {when} BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )


def drop_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {_FUNCTION} ON {_TABLE}; DROP FUNCTION IF EXISTS {_FUNCTION}();")
    elif schema_editor.connection.vendor == "sqlite":
        for name in _SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS mhp_frozen_{name}")


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0012_reliability_and_flags"),
        ("datasets", "0002_frozen_guard"),
    ]

    operations = [
        migrations.CreateModel(
            name="DatasetJudgement",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "annotator",
                    models.CharField(
                        help_text="Pseudonym: the same person has the same one in every version.", max_length=16
                    ),
                ),
                (
                    "aesthetics",
                    models.CharField(
                        choices=[("first", "First image"), ("second", "Second image"), ("tie", "Tie")], max_length=8
                    ),
                ),
                (
                    "detail",
                    models.CharField(
                        choices=[("first", "First image"), ("second", "Second image"), ("tie", "Tie")], max_length=8
                    ),
                ),
                (
                    "alignment",
                    models.CharField(
                        choices=[("first", "First image"), ("second", "Second image"), ("tie", "Tie")], max_length=8
                    ),
                ),
                (
                    "overall",
                    models.CharField(
                        choices=[("first", "First image"), ("second", "Second image"), ("tie", "Tie")], max_length=8
                    ),
                ),
                (
                    "left_side",
                    models.CharField(
                        choices=[("first", "First image on the left"), ("second", "Second image on the left")],
                        help_text="Which image was shown on the left.",
                        max_length=8,
                    ),
                ),
                ("duration_ms", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(help_text="When the judgement was submitted.")),
                (
                    "split",
                    models.CharField(
                        blank=True,
                        choices=[("train", "Train"), ("val", "Validation"), ("test", "Test")],
                        help_text="The pair's split; empty: not in the version.",
                        max_length=8,
                    ),
                ),
                (
                    "pair",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="dataset_judgements",
                        to="annotation.pair",
                    ),
                ),
                (
                    "version",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="judgements",
                        to="datasets.datasetversion",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("version", "pair", "annotator"), name="datasetjudgement_once_per_version"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("split", ""), ("split__in", ["train", "val", "test"]), _connector="OR"
                        ),
                        name="datasetjudgement_split_valid",
                    ),
                ],
            },
        ),
        migrations.RunPython(create_guard, drop_guard),
    ]

"""The claim never picks a pair the client shows (`_exclude`), even when the client's lease on it ran
out: before, such a pair could be leased to the same annotator again and shown twice. And its plans
never sort: on a table without statistics they fetched every open pair and tested its leases first."""

from pathlib import Path

from django.db import migrations

# Frozen copies (this version's claim, and 0008's for the reverse); the live source is
# annotation/labeling/queue/sql/.
_SQL = Path(__file__).parent / "sql"


def _frozen(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text()


def create_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("0009_pair_claim"))


def restore_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("0008_pair_claim"))


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_claim_head_scan")]

    operations = [migrations.RunPython(create_claim, restore_claim)]

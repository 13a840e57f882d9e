"""The claim tells "busy" from "empty": when it leases nothing although a pair the annotator could judge
exists (another transaction held that pair's row lock, so the walk skipped it), `mhp_pair_claim` answers
one row with status `busy`, and the caller asks again after a short pause instead of showing an empty queue.
"""

from pathlib import Path

from django.db import migrations

# Frozen copies of this version of the claim and of 0013's, which the reverse restores; the live source is
# annotation/labeling/queue/sql/.
_SQL = Path(__file__).parent / "sql"


def _frozen(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text()


def create_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("0014_pair_claim"))


def restore_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("0013_pair_claim"))


class Migration(migrations.Migration):
    dependencies = [("annotation", "0013_queue_rank")]

    operations = [migrations.RunPython(create_claim, restore_claim)]

"""The labeling hot path as PostgreSQL functions: claim and submit (one round trip each), a permission test.

Claim and submit follow the same rules as the portable ORM path in `annotation.labeling.queue` and
are called from `annotation.labeling.queue.postgres`; `mhp_user_has_perm` from `annotation.auth_backend`.
Each statement inside a PL/pgSQL function takes a fresh snapshot (read committed), so a count made
after a row lock was granted sees everything committed before it: that is what keeps "judgements
done + live leases <= judgements required" exact under concurrency. PL/pgSQL also keeps each
statement's plan for the connection's life, so nothing is parsed or planned again on the hot path.
Other databases get nothing here and use the ORM path.
"""

from pathlib import Path

from django.db import migrations

# A frozen copy of this version of the functions; the live source is annotation/labeling/queue/sql/.
_SQL = Path(__file__).parent / "sql"


def _frozen(name: str) -> str:
    return (_SQL / f"0004_{name}.sql").read_text()


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("pair_claim"))
        schema_editor.execute(_frozen("judgement_submit"))
        schema_editor.execute(_frozen("user_has_perm"))


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("drop"))


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_roles")]

    operations = [migrations.RunPython(create_functions, drop_functions)]

"""A frozen dataset version and its items are read-only in the database itself (PostgreSQL).

The admin and the services already refuse such changes; these triggers also refuse them from the ORM,
a shell or raw SQL: updating or deleting a frozen version, and inserting, updating or deleting an item
of one. PostgreSQL runs the functions of datasets/sql/; SQLite (the embedded demo) gets the same rules
as plain triggers, deletion aside (see _SQLITE_TRIGGERS). Both raise a constraint error, which Django reports as an IntegrityError.
"""

from pathlib import Path

from django.db import migrations

# Frozen copies of this version of the functions; the live source is datasets/sql/.
_SQL = Path(__file__).parent / "sql"

_TRIGGERS = """
CREATE TRIGGER mhp_dataset_version_frozen_guard BEFORE UPDATE OR DELETE ON datasets_datasetversion
    FOR EACH ROW EXECUTE FUNCTION mhp_dataset_version_frozen_guard();
CREATE TRIGGER mhp_dataset_item_frozen_guard BEFORE INSERT OR UPDATE OR DELETE ON datasets_datasetitem
    FOR EACH ROW EXECUTE FUNCTION mhp_dataset_item_frozen_guard();
"""


# SQLite has no TRUNCATE: emptying a table (a test's flush) deletes row by row, so its guards refuse
# changes and additions but leave deletion to the admin's and the services' refusals.
_FROZEN_VERSION = "(SELECT status FROM datasets_datasetversion WHERE id = {row}.version_id) = 'frozen'"
_SQLITE_TRIGGERS = [
    ("version_update", "BEFORE UPDATE ON datasets_datasetversion WHEN OLD.status = 'frozen'", "version"),
    ("item_insert", f"BEFORE INSERT ON datasets_datasetitem WHEN {_FROZEN_VERSION.format(row='NEW')}", "items"),
    (
        "item_update",
        f"BEFORE UPDATE ON datasets_datasetitem WHEN {_FROZEN_VERSION.format(row='OLD')} "
        f"OR {_FROZEN_VERSION.format(row='NEW')}",
        "items",
    ),
]
_SQLITE_MESSAGES = {
    "version": "a frozen dataset version never changes",
    "items": "the items of a frozen dataset version never change",
}


def create_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute((_SQL / "0002_dataset_version_frozen_guard.sql").read_text(), params=None)
        schema_editor.execute((_SQL / "0002_dataset_item_frozen_guard.sql").read_text(), params=None)
        schema_editor.execute(_TRIGGERS)
    elif schema_editor.connection.vendor == "sqlite":
        for name, when, kind in _SQLITE_TRIGGERS:
            schema_editor.execute(
                f"CREATE TRIGGER mhp_frozen_{name} {when} "
                f"BEGIN SELECT RAISE(ABORT, '{_SQLITE_MESSAGES[kind]}'); END"
            )


def drop_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS mhp_dataset_version_frozen_guard ON datasets_datasetversion;"
            "DROP TRIGGER IF EXISTS mhp_dataset_item_frozen_guard ON datasets_datasetitem;"
            "DROP FUNCTION IF EXISTS mhp_dataset_version_frozen_guard();"
            "DROP FUNCTION IF EXISTS mhp_dataset_item_frozen_guard();"
        )
    elif schema_editor.connection.vendor == "sqlite":
        for name, _, _ in _SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS mhp_frozen_{name}")


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_initial")]

    operations = [migrations.RunPython(create_guard, drop_guard)]

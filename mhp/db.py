"""Database upkeep that services call after bulk writes."""

from django.db import connection, models


def tables_analyze(*tables: type[models.Model]) -> None:
    """Refresh PostgreSQL's statistics of these tables after a bulk write, so that the first queries on
    them (the labeling claim among them) are planned on what the tables now hold, not on an empty table.
    Autovacuum would get there, but only after its threshold and its nap; elsewhere this does nothing."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table._meta.db_table)}")

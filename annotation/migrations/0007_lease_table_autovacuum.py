"""Autovacuum the lease table by dead rows alone: it holds a few dozen live rows and churns one per judgement.

The default trigger (50 rows + 20% of the table) is meant for tables that grow; this one never does. Celery
beat's `annotation.lease_table_upkeep` vacuums it every few seconds; this is the fallback without beat.
"""

from django.db import migrations

SET = """ALTER TABLE annotation_pairlease SET (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0
)"""
RESET = """ALTER TABLE annotation_pairlease RESET (
    autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay
)"""


def set_autovacuum(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SET)


def reset_autovacuum(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RESET)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0006_lean_pair_indexes")]

    operations = [migrations.RunPython(set_autovacuum, reset_autovacuum)]

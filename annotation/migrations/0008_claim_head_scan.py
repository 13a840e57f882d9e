"""The claim walks a bounded head of the partly judged pairs, then fresh pairs from a front it keeps.

Migration 0004's claim took the first eligible open pair in (judgements done desc, id) order from
the start of the queue index. Two costs grew without bound there:
- An annotator's own judged pairs stay open until others judge them too and sit at the head of that
  order: a claim stepped over every one of them. One annotator labeling alone, two when a pair needs
  three, or one far faster than the rest paid for all they had judged (PostgreSQL 8 ms a claim after
  2,000 own open pairs, 21 ms after 4,400).
- Every pair taken leaves a dead index entry at the start of the fresh pairs until a vacuum (nothing
  is inserted there, so the index never cleans those pages itself): a claim for a fresh pair stepped
  over all of them (1.2 ms after 80,000 judgements; autovacuum waits for 20% of the table by default).

Now a claim tries, for each kind (gold or not):
1. the first 128 partly judged pairs in queue order (a bounded walk; in a busy queue those are
   mostly pairs in flight, leased to others);
2. then pairs nobody has judged yet, by id, from the kind's fresh front (`QueueFront`: the lowest id
   of an unjudged open pair, set again by the first claim that finds it older than 5 s,
   one claim at a time under an advisory lock, so no beat or cron is needed);
3. only when neither has one, every open pair from the start (the end of a queue: still never
   "nothing to judge" while something is).
Partly judged pairs still come first for everyone whose own pairs do not crowd the head; the one
who runs ahead takes fresh pairs, and the others finish the partly judged ones. When fewer people
label than a pair needs judgements, the pairs all of them judged can never finish and end up filling
the head: then everyone takes fresh pairs (lower PAIR_JUDGEMENTS_REQUIRED for such a team).
"""

from pathlib import Path

from django.db import migrations, models

# Frozen copies of this version of the functions (and of 0004's claim, which the reverse restores);
# the live source is annotation/labeling/queue/sql/.
_SQL = Path(__file__).parent / "sql"


def _frozen(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text()


def create_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("0008_fresh_front_move"))
        schema_editor.execute(_frozen("0008_pair_claim"))


def restore_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_frozen("0004_pair_claim"))
        schema_editor.execute("DROP FUNCTION IF EXISTS mhp_fresh_front_move(boolean, timestamptz)")


class Migration(migrations.Migration):
    dependencies = [("annotation", "0007_lease_table_autovacuum")]

    operations = [
        migrations.CreateModel(
            name="QueueFront",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("is_gold", models.BooleanField(unique=True)),
                ("fresh_from", models.BigIntegerField(help_text="No open pair below this id is unjudged.")),
                ("moved_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(create_claim, restore_claim),
    ]

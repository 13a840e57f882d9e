"""Fresh pairs are served in (queue rank, id) order, so that a model can choose which come first.

`Pair.queue_rank`: a guided order (annotation.labeling.queue_order) ranks the fresh pairs it places
1..n; every other pair has the default, the largest integer, so with no order applied the queue is in
plain id order, as before. A partial index on (is_gold, queue_rank, id) of the fresh pairs serves the
claim's fresh region; a pair leaves it with its first judgement. The fresh front (`QueueFront`) becomes a
(rank, id) position: `mhp_fresh_front_move` now returns both, so its result type changes and the function
is dropped and created again. `QueueOrder` (a job: the page queues it) records which order is in force
(training 0004 gives the admin role its permissions).
"""

from pathlib import Path

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Frozen copies of this version of the functions (and of 0008's front and 0009's claim, which the reverse
# restores); the live source is annotation/labeling/queue/sql/.
_SQL = Path(__file__).parent / "sql"
_DROP_FRONT = "DROP FUNCTION IF EXISTS mhp_fresh_front_move(boolean, timestamptz)"


def _frozen(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text()


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_DROP_FRONT)
        schema_editor.execute(_frozen("0013_fresh_front_move"))
        schema_editor.execute(_frozen("0013_pair_claim"))


def restore_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_DROP_FRONT)
        schema_editor.execute(_frozen("0008_fresh_front_move"))
        schema_editor.execute(_frozen("0009_pair_claim"))


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0012_reliability_and_flags"),
        ("training", "0003_pair_scoring"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="QueueOrder",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        db_index=True,
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("progress", models.FloatField(default=0.0, help_text="0 to 1")),
                ("config", models.JSONField(blank=True, default=dict)),
                ("metrics", models.JSONField(blank=True, default=dict)),
                ("error", models.TextField(blank=True)),
                ("task_id", models.CharField(blank=True, help_text="Celery task id", max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("guided", models.BooleanField()),
                (
                    "random_share",
                    models.FloatField(blank=True, help_text="The share of pairs placed at random (0 to 1).", null=True),
                ),
                ("seed", models.BigIntegerField(blank=True, help_text="The random draw's seed.", null=True)),
                ("pairs_ranked", models.PositiveIntegerField(default=0)),
            ],
            options={
                "ordering": ("-created_at", "-id"),
                "abstract": False,
            },
        ),
        migrations.AddField(
            model_name="pair",
            name="queue_rank",
            field=models.IntegerField(db_default=2147483647, default=2147483647),
        ),
        migrations.AddField(
            model_name="queuefront",
            name="fresh_rank",
            field=models.IntegerField(default=2147483647, help_text="The queue rank the front is at."),
        ),
        migrations.AlterField(
            model_name="queuefront",
            name="fresh_from",
            field=models.BigIntegerField(help_text="No unjudged pair of a lower rank, or of this rank and a lower id."),
        ),
        migrations.AddIndex(
            model_name="pair",
            index=models.Index(
                models.F("is_gold"),
                models.F("queue_rank"),
                models.F("id"),
                condition=models.Q(("judgements_done", 0)),
                name="pair_fresh_queue",
            ),
        ),
        migrations.AddConstraint(
            model_name="pair",
            constraint=models.CheckConstraint(
                condition=models.Q(("queue_rank__gte", 0)), name="pair_queue_rank_not_negative"
            ),
        ),
        migrations.AddField(
            model_name="queueorder",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="queueorder",
            name="scoring_run",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="queue_orders",
                to="training.pairscoringrun",
            ),
        ),
        migrations.AddConstraint(
            model_name="queueorder",
            constraint=models.CheckConstraint(
                condition=models.Q(("progress__gte", 0.0), ("progress__lte", 1.0)), name="queueorder_progress_0_1"
            ),
        ),
        migrations.AddConstraint(
            model_name="queueorder",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["queued", "running", "succeeded", "failed", "cancelled"])),
                name="queueorder_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="queueorder",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("random_share__isnull", True),
                    models.Q(("random_share__gte", 0.0), ("random_share__lte", 1.0)),
                    _connector="OR",
                ),
                name="queueorder_share_0_1",
            ),
        ),
        migrations.RunPython(create_functions, restore_functions),
    ]

from django.core.management.base import BaseCommand, CommandError

from annotation.labeling.reliability import reliability_run_execute, reliability_run_request
from mhp.jobs import JobStatus


class Command(BaseCommand):
    help = (
        "Fit annotator reliabilities (Dawid-Skene per dimension) and flag spammers, as the Celery job does; "
        "skipped when no judgement changed since the last fit unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="fit even when no judgement changed")

    def handle(self, *args, force: bool, **options):
        run, created = reliability_run_request(force=force, enqueue=False)
        if not created:
            raise CommandError(f"reliability fit {run.pk} is already {run.status}; wait for it to finish")
        run = reliability_run_execute(run_id=run.pk)
        if run.status != JobStatus.SUCCEEDED:
            raise CommandError(f"reliability fit {run.pk} {run.status}: {run.error}")
        if run.metrics.get("skipped"):
            self.stdout.write(f"fit {run.pk}: no judgement changed since fit {run.metrics['same_as_run']}; skipped")
            return
        self.stdout.write(
            f"fit {run.pk}: {run.judgements_used} judgements of {run.metrics['annotators']} annotators on "
            f"{run.metrics['pairs']} pairs; {run.annotators_flagged} annotator(s) newly flagged as spammers"
        )

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mhp.tasks import ping

QUEUES = ("default", "gpu")


class Command(BaseCommand):
    help = "Send a ping to each Celery queue and report which ones have a worker consuming them."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each queue")

    def handle(self, *args, timeout: float, **options):
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write("No broker configured (REDIS_URL unset): tasks run in-process, no workers needed.")
            return
        missing = [queue for queue in QUEUES if not self._answered(queue, timeout)]
        if missing:
            raise CommandError(f"no worker answered on queue(s): {', '.join(missing)}")

    def _answered(self, queue: str, timeout: float) -> bool:
        result = ping.apply_async(queue=queue)
        try:
            answer = result.get(timeout=timeout)
        except CeleryTimeout:
            self.stdout.write(f"{queue}: no answer within {timeout:g}s")
            result.revoke()
            return False
        self.stdout.write(f"{queue}: answered by {answer['host']} (pid {answer['pid']}, {answer['database']})")
        return True

"""Labeling tasks: periodic upkeep of the queue and the reliability fit (scheduled by Celery beat, see
CELERY_BEAT_SCHEDULE), the job that applies a queue order; thin doors onto the services."""

from celery import shared_task

from annotation.labeling import queue, queue_order, reliability


@shared_task(name="annotation.lease_table_upkeep", acks_late=False, ignore_result=True)
def lease_table_upkeep() -> int:
    return queue.pair_leases_upkeep()


@shared_task(name=reliability.RELIABILITY_TASK)
def reliability_run_task(run_id: int) -> str:
    return reliability.reliability_run_execute(run_id=run_id).status


@shared_task(name="annotation.reliabilities_refresh", ignore_result=True)
def reliabilities_refresh_task() -> str:
    """Every few minutes (CELERY_BEAT_SCHEDULE): a fit only when the judgements changed."""
    run = reliability.reliabilities_refresh()
    return run.status if run else "unchanged"


@shared_task(name=queue_order.APPLY_TASK, acks_late=True, ignore_result=True)
def queue_order_apply(order_id: int) -> None:
    queue_order.queue_order_apply(order_id)

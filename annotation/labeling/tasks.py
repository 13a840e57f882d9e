"""Periodic upkeep of the labeling queue (scheduled by Celery beat, see CELERY_BEAT_SCHEDULE), and the job that
applies a queue order."""

from celery import shared_task

from annotation.labeling import queue, queue_order


@shared_task(name="annotation.lease_table_upkeep", acks_late=False, ignore_result=True)
def lease_table_upkeep() -> int:
    return queue.pair_leases_upkeep()


@shared_task(name=queue_order.APPLY_TASK, acks_late=True, ignore_result=True)
def queue_order_apply(order_id: int) -> None:
    queue_order.queue_order_apply(order_id)

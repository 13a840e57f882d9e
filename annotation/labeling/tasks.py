"""Periodic upkeep of the labeling queue (scheduled by Celery beat, see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from annotation.labeling import queue


@shared_task(name="annotation.lease_table_upkeep", acks_late=False, ignore_result=True)
def lease_table_upkeep() -> int:
    return queue.pair_leases_upkeep()

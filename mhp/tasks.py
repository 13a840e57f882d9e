"""Tasks that belong to no app: worker health."""

import os
import socket

from celery import shared_task
from django.db import connection


@shared_task(name="mhp.ping", acks_late=False)
def ping() -> dict:
    """Answered by whichever worker consumes the queue it was sent to: proves the worker, Django and DB."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"host": socket.gethostname(), "pid": os.getpid(), "database": connection.vendor, "db_ok": one == 1}

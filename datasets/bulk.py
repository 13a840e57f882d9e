"""Writing a stream of rows: one INSERT per batch, so memory holds one batch whatever the stream's length."""

from collections.abc import Callable, Iterable
from itertools import islice

from django.db import models


def rows_insert(
    model: type[models.Model],
    rows: Iterable[models.Model],
    *,
    batch_size: int,
    written: Callable[[int], None] | None = None,
) -> int:
    """Insert `rows` (consumed lazily) `batch_size` per INSERT; `written` hears the count so far after each
    batch. Returns the count."""
    count, stream = 0, iter(rows)
    while batch := list(islice(stream, batch_size)):
        model.objects.bulk_create(batch)
        count += len(batch)
        if written is not None:
            written(count)
    return count

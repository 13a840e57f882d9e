from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, models, transaction

M = TypeVar("M", bound=models.Model)


def get_or_create_unique(lookup: models.QuerySet, build: Callable[[], M]) -> tuple[M, bool]:
    """Return the row matching `lookup`, or save the one `build` makes; a unique constraint settles races.

    `build` runs only when no row exists, so costly work (decoding an image) is skipped for duplicates.
    """
    existing = lookup.first()
    if existing is not None:
        return existing, False
    instance = build()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        winner = lookup.first()
        if winner is None:
            raise
        return winner, False
    return instance, True

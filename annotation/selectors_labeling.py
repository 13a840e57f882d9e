"""Reads for the labeling form and API: what an annotator is shown and their own counts."""

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from annotation.models import Image, Judgement, PairLease, Side


def _image_payload(image: Image) -> dict:
    return {
        "url": image.file.url,
        "thumbnail_url": image.thumbnail.url if image.thumbnail else image.file.url,
        "width": image.width,
        "height": image.height,
    }


def lease_images(lease: PairLease) -> tuple[Image, Image]:
    """(left, right) as this annotator sees them."""
    pair = lease.pair
    if lease.left_side == Side.FIRST:
        return pair.image_first, pair.image_second
    return pair.image_second, pair.image_first


def lease_payload(lease: PairLease) -> dict:
    """What the form needs to show a leased pair. Nothing tells a gold pair or a generator apart."""
    left, right = lease_images(lease)
    return {
        "pair_id": lease.pair_id,
        "prompt": lease.pair.prompt.text,
        "left": _image_payload(left),
        "right": _image_payload(right),
        "lease_expires_at": lease.expires_at.isoformat(),
    }


def annotator_counts(*, user: AbstractBaseUser) -> dict[str, int]:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Judgement.objects.filter(annotator=user)
    return {"today": mine.filter(created_at__gte=start).count(), "total": mine.count()}

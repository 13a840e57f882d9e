"""Builders for labeling tests: many pairs of one prompt from few images (decoding images is the slow part)."""

import importlib
import itertools

from django.contrib.auth.models import Group, Permission

from annotation.models import Pair
from annotation.services.pairs import pair_get_or_create
from annotation.tests.factories import make_generator, make_image, make_prompt

ANSWERS_LEFT = {"aesthetics": "left", "detail": "left", "alignment": "tie", "overall": "right"}


def make_pairs(count: int, *, required: int = 3, generators: int = 3) -> list[Pair]:
    """`count` pairs over as few images of one prompt as needed, each needing `required` judgements."""
    prompt = make_prompt()
    gens = [make_generator() for _ in range(generators)]
    images = []
    pairs: list[Pair] = []
    for index in itertools.count():
        images.append(make_image(prompt, gens[index % generators]))
        for other in images[:-1]:
            pair, _ = pair_get_or_create(image_a=other, image_b=images[-1], judgements_required=required)
            pairs.append(pair)
            if len(pairs) == count:
                return pairs
    raise AssertionError("unreachable")


def ensure_role_groups() -> None:
    """Re-create the role groups after a transactional test's flush emptied them (migrations made them).

    Permissions survive a flush (post_migrate re-creates them); the groups, data of a migration, do not.
    """
    if Group.objects.filter(name="annotator").exists():
        return
    migration = importlib.import_module("annotation.migrations.0003_roles")
    memberships = {
        "annotator": migration._permissions(Permission, migration.ANNOTATOR),
        "reviewer": migration._permissions(Permission, migration.REVIEWER),
        "admin": list(Permission.objects.filter(content_type__app_label__in=migration.ADMIN_APPS))
        + migration._permissions(Permission, migration.ADMIN_EXTRA),
    }
    for name, permissions in memberships.items():
        Group.objects.create(name=name).permissions.set(permissions)

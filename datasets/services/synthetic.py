"""Synthetic scale data for benchmarks and demos: prompts, images, pairs and judgements in bulk.

Rows are streamed into the tables with PostgreSQL's COPY (psycopg 3 `cursor.copy`), or plain batched
INSERTs on other databases, with ids allocated after the current maximum and the sequences reset
afterwards. Images have no file unless `tiny_files` (an 8x8 PNG each, for demos). Judgements follow
a latent preference per pair, so majorities, ties and disagreement look like real labeling.
"""

import hashlib
import io
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max, Model
from django.utils import timezone
from PIL import Image as PILImage

from annotation.models import Category, Generator, GeneratorFamily, Image, Judgement, Pair, Prompt
from annotation.prompts.normalize import normalize_prompt, prompt_hash

INSERT_BATCH = 5_000
SUBJECTS = ("fox", "lighthouse", "teapot", "astronaut", "orchid", "castle", "robot", "whale", "bakery", "violin")
STYLES = ("oil painting", "photograph", "watercolour", "3d render", "pencil sketch", "pixel art", "isometric view")
PLACES = ("in the snow", "at dusk", "under water", "on mars", "in a forest", "in tokyo", "on a table")
DIMENSIONS = ("aesthetics", "detail", "alignment", "overall")

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class SyntheticCounts:
    prompts: int
    images: int
    pairs: int
    judgements: int


def _next_id(model: type[Model]) -> int:
    return (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1


def _write(model: type[Model], columns: list[str], rows: Iterable[tuple], progress: Progress | None) -> int:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for count, row in enumerate(rows, start=1):
                    copy.write_row(row)
                    if progress and count % 100_000 == 0:
                        progress(model._meta.model_name, count)
            return count
        marks = ", ".join(["%s"] * len(columns))
        for batch in _batched(rows, INSERT_BATCH):
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", [_plain(row) for row in batch])
            count += len(batch)
    return count


def _batched(rows: Iterable[tuple], size: int) -> Iterable[tuple[tuple, ...]]:
    """itertools.batched, which Python 3.11 (the oldest the project supports) lacks."""
    iterator = iter(rows)
    while batch := tuple(itertools.islice(iterator, size)):
        yield batch


def _plain(row: tuple) -> tuple:
    # Django keeps a UUIDField as 32 hex characters where the database has no uuid type (SQLite).
    return tuple(value.hex if isinstance(value, uuid.UUID) else value for value in row)


def _tiny_png(image_id: int) -> bytes:
    canvas = PILImage.new("RGB", (8, 8), (image_id & 0xFF, (image_id >> 8) & 0xFF, (image_id >> 16) & 0xFF))
    canvas.putpixel((0, 0), ((image_id >> 24) & 0xFF, 0, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


class _Plan:
    """Ids and shapes: which prompt gets how many images and pairs."""

    def __init__(self, *, prompts: int, pairs: int) -> None:
        self.prompts, self.pairs = prompts, pairs
        self.base, self.extra = divmod(pairs, prompts)
        self.prompt0, self.image0, self.pair0 = _next_id(Prompt), _next_id(Image), _next_id(Pair)

    def pairs_of(self, index: int) -> int:
        return self.base + (1 if index < self.extra else 0)

    @staticmethod
    def images_for(pair_count: int) -> int:
        # The fewest images whose pairs cover the count (n * (n - 1) / 2 >= pairs), at least 2.
        return max(2, math.ceil((1 + math.sqrt(1 + 8 * pair_count)) / 2))


def synthetic_seed(
    *,
    prompts: int,
    pairs: int,
    annotators: int = 30,
    generators: int = 6,
    judgements_per_pair: int = 3,
    tiny_files: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
) -> SyntheticCounts:
    """Bulk-create `prompts` accepted prompts and `pairs` fully judged pairs spread over them."""
    if prompts < 1 or pairs < 1:
        raise ValueError("prompts and pairs must be at least 1")
    if judgements_per_pair > annotators:
        raise ValueError("each judgement of a pair needs its own annotator: raise --annotators")
    rng = random.Random(seed)
    with transaction.atomic():
        users = _annotators(annotators)
        gens = _generators(generators)
        categories = list(Category.objects.filter(parent__isnull=True).values_list("id", flat=True)) or [None]
        plan = _Plan(prompts=prompts, pairs=pairs)
        now = timezone.now()
        n_prompts = _write(Prompt, *_prompt_rows(plan, rng, categories, now), progress)
        n_images = _write(Image, *_image_rows(plan, gens, tiny_files, now), progress)
        n_pairs = _write(Pair, *_pair_rows(plan, gens, judgements_per_pair, now), progress)
        n_judgements = _write(Judgement, *_judgement_rows(plan, users, judgements_per_pair, rng, now), progress)
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Prompt, Image, Pair]):
                cursor.execute(statement)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, so the planner sees the new sizes
    return SyntheticCounts(n_prompts, n_images, n_pairs, n_judgements)


def _annotators(count: int) -> list[int]:
    User = get_user_model()
    ids = []
    for index in range(count):
        user, created = User.objects.get_or_create(username=f"synthetic-annotator-{index}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        ids.append(user.pk)
    return ids


def _generators(count: int) -> list[int]:
    families = list(GeneratorFamily.values)
    return [
        Generator.objects.get_or_create(
            name=f"synthetic-gen-{index}", defaults={"family": families[index % len(families)]}
        )[0].pk
        for index in range(count)
    ]


def _prompt_rows(plan: _Plan, rng: random.Random, categories: list, now):
    columns = [
        "id", "text", "normalized_text", "normalized_hash", "source", "source_id", "category_id", "status",
        "rejection_reasons", "origin", "reviews_required", "reviews_done", "needs_reviewer", "created_at", "updated_at",
    ]  # fmt: skip

    def rows():
        for index in range(plan.prompts):
            prompt_id = plan.prompt0 + index
            text = f"a {rng.choice(STYLES)} of a {rng.choice(SUBJECTS)} {rng.choice(PLACES)}, variant {prompt_id}"
            normalized = normalize_prompt(text)
            digest = prompt_hash(normalized)
            yield (prompt_id, text, normalized, digest, "synthetic", str(prompt_id), rng.choice(categories),
                   "accepted", "[]", "collected", 1, 1, False, now, now)  # fmt: skip

    return columns, rows()


def _image_rows(plan: _Plan, gens: list[int], tiny_files: bool, now):
    columns = ["id", "prompt_id", "generator_id", "file", "thumbnail", "sha256", "width", "height", "seed",
               "settings", "source_path", "created_at"]  # fmt: skip

    def rows():
        image_id = plan.image0
        for index in range(plan.prompts):
            for slot in range(plan.images_for(plan.pairs_of(index))):
                data = _tiny_png(image_id) if tiny_files else f"synthetic-image:{image_id}".encode()
                digest = hashlib.sha256(data).hexdigest()
                name = f"images/{digest[:2]}/{digest}.png"
                if tiny_files:
                    default_storage.save(name, ContentFile(data))
                size = 8 if tiny_files else 512
                yield (image_id, plan.prompt0 + index, gens[(index + slot) % len(gens)], name, "", digest, size,
                       size, image_id, "{}", "", now)  # fmt: skip
                image_id += 1

    return columns, rows()


def _pair_rows(plan: _Plan, gens: list[int], required: int, now):
    columns = ["id", "prompt_id", "image_first_id", "image_second_id", "kind", "judgements_required",
               "judgements_done", "is_gold", "gold_answers", "created_at"]  # fmt: skip

    def rows():
        pair_id, image0 = plan.pair0, plan.image0
        for index in range(plan.prompts):
            count = plan.images_for(plan.pairs_of(index))
            slots = itertools.islice(itertools.combinations(range(count), 2), plan.pairs_of(index))
            for a, b in slots:
                same = gens[(index + a) % len(gens)] == gens[(index + b) % len(gens)]
                yield (pair_id, plan.prompt0 + index, image0 + a, image0 + b, "same" if same else "cross",
                       required, required, False, "{}", now)  # fmt: skip
                pair_id += 1
            image0 += count

    return columns, rows()


def _judgement_rows(plan: _Plan, users: list[int], per_pair: int, rng: random.Random, now):
    columns = ["pair_id", "annotator_id", *DIMENSIONS, "left_side", "duration_ms", "client_token", "created_at"]

    def choice(p_first: float) -> str:
        draw = rng.random()
        return "tie" if draw < 0.12 else "first" if draw < 0.12 + 0.88 * p_first else "second"

    def rows():
        for pair_id in range(plan.pair0, plan.pair0 + plan.pairs):
            p_first = rng.random()
            for annotator in rng.sample(users, per_pair):
                answers = tuple(choice(p_first) for _ in DIMENSIONS)
                yield (pair_id, annotator, *answers, rng.choice(("first", "second")), rng.randint(2_000, 30_000),
                       uuid.UUID(int=rng.getrandbits(128), version=4), now)  # fmt: skip

    return columns, rows()

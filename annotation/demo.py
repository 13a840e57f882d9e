"""The demo project: bundled real prompts, a few generators, placeholder images, pairs and two users.

Running it again changes nothing but the demo users' passwords: every row has a natural key.
"""

import io
import json
import random
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image as PILImage
from PIL import ImageDraw

from annotation import roles
from annotation.images.services.pairs import pair_get_or_create
from annotation.images.services.store import image_store
from annotation.models import Category, Generator, GeneratorFamily, Image, Prompt
from annotation.prompts.services.store import prompt_accept, prompt_get_or_create

PROMPTS_FILE = Path(__file__).resolve().parent / "demo_data" / "prompts.jsonl"
GENERATORS = (
    ("Stable Diffusion XL", GeneratorFamily.DIFFUSION, "1.0"),
    ("GigaGAN", GeneratorFamily.GAN, "1"),
    ("Parti", GeneratorFamily.AUTOREGRESSIVE, "350M"),
)
PROMPTS_WITH_IMAGES = 40
IMAGES_PER_GENERATOR = 2
IMAGE_SIZE = 256
DEMO_USERS = (("demo-admin", roles.ADMIN), ("demo-reviewer", roles.REVIEWER), ("demo-annotator", roles.ANNOTATOR))


@dataclass
class DemoSummary:
    prompts_created: int = 0
    images_created: int = 0
    pairs_created: int = 0
    passwords: dict[str, str] = field(default_factory=dict)


def demo_load() -> DemoSummary:
    summary = DemoSummary()
    with transaction.atomic():
        prompts = _load_prompts(summary)
        generators = [_generator(name, family, version) for name, family, version in GENERATORS]
        for prompt in prompts[:PROMPTS_WITH_IMAGES]:
            prompt_accept(prompt=prompt)
            images = _draw_images(prompt, generators, summary)
            _make_pairs(images, summary)
        summary.passwords = {username: _demo_user(username, role) for username, role in DEMO_USERS}
    return summary


def _load_prompts(summary: DemoSummary) -> list[Prompt]:
    categories = {category.slug: category for category in Category.objects.filter(parent__isnull=True)}
    prompts = []
    with PROMPTS_FILE.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            prompt, created = prompt_get_or_create(
                text=row["prompt"],
                source=row["source"],
                source_id=row["source_id"],
                category=categories.get(row.get("category", "")),
            )
            summary.prompts_created += created
            prompts.append(prompt)
    return prompts


def _generator(name: str, family: str, version: str) -> Generator:
    generator, _ = Generator.objects.get_or_create(name=name, defaults={"family": family, "version": version})
    return generator


def _draw_images(prompt: Prompt, generators: list[Generator], summary: DemoSummary) -> list[Image]:
    images = []
    for generator in generators:
        for index in range(IMAGES_PER_GENERATOR):
            seed = prompt.pk * 1000 + generator.pk * 10 + index
            image, created = image_store(
                prompt=prompt,
                generator=generator,
                # No label: judges must not learn which generator drew an image.
                data=placeholder_png(seed),
                seed=seed,
                generation_settings={"placeholder": True},
            )
            summary.images_created += created
            images.append(image)
    return images


def placeholder_png(seed: int, *, label: str = "") -> bytes:
    """A deterministic abstract picture: a two-colour gradient with a few shapes, with `label` printed if given."""
    rng = random.Random(seed)
    top, bottom = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    canvas = PILImage.new("RGB", (IMAGE_SIZE, IMAGE_SIZE))
    draw = ImageDraw.Draw(canvas)
    for y in range(IMAGE_SIZE):
        mix = y / (IMAGE_SIZE - 1)
        draw.line(
            [(0, y), (IMAGE_SIZE, y)], fill=tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
        )
    for _ in range(rng.randint(3, 7)):
        x0, y0 = rng.randrange(IMAGE_SIZE), rng.randrange(IMAGE_SIZE)
        x1, y1 = x0 + rng.randint(20, 120), y0 + rng.randint(20, 120)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x0, y0, x1, y1], fill=tuple(rng.randrange(256) for _ in range(3)))
    if label:
        draw.text((8, IMAGE_SIZE - 18), f"{label} #{seed}", fill=(255, 255, 255))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


def _make_pairs(images: list[Image], summary: DemoSummary) -> None:
    """Two pairs across generators and one within a generator, per prompt (the 80/20 idea, small)."""
    per_generator = IMAGES_PER_GENERATOR
    candidates = [(images[0], images[per_generator]), (images[1], images[2 * per_generator]), (images[0], images[1])]
    for image_a, image_b in candidates:
        _, created = pair_get_or_create(image_a=image_a, image_b=image_b)
        summary.pairs_created += created


def _demo_user(username: str, role: str) -> str:
    user, _ = get_user_model().objects.get_or_create(username=username)
    password = secrets.token_urlsafe(9)
    user.set_password(password)
    user.save()
    roles.role_assign(user=user, role=role)
    return password

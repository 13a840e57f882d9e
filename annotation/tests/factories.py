"""Small builders for test rows, going through the real services."""

import itertools

from django.contrib.auth import get_user_model

from annotation import roles
from annotation.demo import placeholder_png
from annotation.images.services.pairs import pair_get_or_create
from annotation.images.services.store import image_store
from annotation.models import Generator, GeneratorFamily, Image, Pair, Prompt
from annotation.prompts.services.store import prompt_get_or_create

_sequence = itertools.count(1)


def make_user(role: str | None = None, username: str | None = None):
    user = get_user_model().objects.create_user(username=username or f"user{next(_sequence)}", password="pw-123456")
    if role:
        roles.role_assign(user=user, role=role)
    return user


def make_prompt(text: str | None = None) -> Prompt:
    prompt, _ = prompt_get_or_create(text=text or f"a red fox number {next(_sequence)} in the snow", source="test")
    return prompt


def make_generator(name: str | None = None) -> Generator:
    generator, _ = Generator.objects.get_or_create(
        name=name or f"generator {next(_sequence)}", defaults={"family": GeneratorFamily.DIFFUSION}
    )
    return generator


def make_image(prompt: Prompt, generator: Generator) -> Image:
    seed = next(_sequence)
    image, _ = image_store(prompt=prompt, generator=generator, data=placeholder_png(seed, label="t"), seed=seed)
    return image


def make_pair(prompt: Prompt | None = None) -> Pair:
    prompt = prompt or make_prompt()
    generator = make_generator()
    pair, _ = pair_get_or_create(image_a=make_image(prompt, generator), image_b=make_image(prompt, generator))
    return pair

"""A scoring job (a Celery result, not a row) ends FAILURE with a message a person can read, whatever failed."""

import os

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from annotation.tests.factories import make_generator, make_image, make_prompt
from training.scoring import ScoringFailed
from training.tasks import score_stored_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MODEL_ROOTS = [tmp_path]  # checkpoints lie under a root: refused by the loader, not the roots
    prompt, generator = make_prompt("a bowl of ramen, studio light"), make_generator()
    return [make_image(prompt, generator) for _ in range(2)]


def _score(images, checkpoint, image_ids=None):
    kwargs = {"prompt": "a bowl of ramen", "image_ids": image_ids or [i.pk for i in images], "dimensions": ["overall"]}
    return score_stored_images.apply(kwargs={**kwargs, "checkpoint": str(checkpoint)}, throw=False)


def _failure(result) -> str:
    assert result.state == "FAILURE"
    assert isinstance(result.result, ScoringFailed), repr(result.result)
    return str(result.result)


def test_a_garbage_checkpoint_fails_the_job_with_a_readable_message(images, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(247))
    message = _failure(_score(images, garbage))
    assert message.startswith(f"cannot load the checkpoint: {garbage} is not a PyTorch checkpoint we can read")


def test_a_text_file_as_checkpoint_fails_the_job_with_a_readable_message(images, tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    message = _failure(_score(images, passwd))
    # The loader may name the problem itself or not (then it is an error nobody expected): readable either way.
    assert message.startswith(("cannot load the checkpoint: ", "unexpected error (")), message
    assert "Traceback" not in message


def test_unknown_images_and_unreadable_files_fail_with_their_reason(images, tmp_path, mps_official_path):
    checkpoint = tmp_path / "mps"
    call_command("import_mps_checkpoint", str(mps_official_path), str(checkpoint))
    assert _failure(_score(images, checkpoint, image_ids=[images[0].pk, 10**9])) == "unknown image ids: [1000000000]"
    broken = images[1]
    broken.file.storage.delete(broken.file.name)
    broken.file.storage.save(broken.file.name, ContentFile(b"not an image any more"))
    message = _failure(_score(images, checkpoint))
    assert message.startswith(f"image {broken.pk} cannot be read (UnidentifiedImageError: ")
    assert _score(images[:1], checkpoint).state == "SUCCESS"

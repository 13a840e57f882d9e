"""The doors onto the MPS scorer: management commands and the staff-only scoring API."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import roles
from annotation.demo import placeholder_png
from annotation.tests.factories import make_generator, make_image, make_prompt, make_user
from training.mps import score_images


@pytest.fixture
def checkpoint_root(settings, project_checkpoint):
    """The scoring API reads checkpoints only under the configured roots: this one's folder is one."""
    settings.MODEL_ROOTS = [project_checkpoint.parent]


@pytest.fixture
def image_files(tmp_path):
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"image{seed}.png"
        path.write_bytes(placeholder_png(seed, label="cmd"))
        paths.append(str(path))
    return paths


def test_import_mps_checkpoint_writes_the_project_format(project_checkpoint):
    assert (project_checkpoint / "model.safetensors").is_file()
    assert json.loads((project_checkpoint / "config.json").read_text())


def test_import_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "notes.pth"
    bogus.write_text("not a checkpoint")
    with pytest.raises(CommandError):
        call_command("import_mps_checkpoint", str(bogus), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_score_images_command_prints_the_scorers_numbers(project_checkpoint, image_files, capsys):
    prompt = "a red fox in the snow"
    call_command(
        "score_images",
        *image_files,
        prompt=prompt,
        checkpoint=str(project_checkpoint),
        dimension=["overall", "aesthetics"],
        json=True,
    )
    printed = json.loads(capsys.readouterr().out)
    direct = score_images(project_checkpoint, prompt, image_files, ["overall", "aesthetics"])
    for dimension in ("overall", "aesthetics"):
        assert printed["scores"][dimension] == pytest.approx(direct["scores"][dimension])
    call_command("score_images", *image_files, prompt=prompt, checkpoint=str(project_checkpoint))
    table = capsys.readouterr().out
    assert "image1.png" in table and "image2.png" in table


def test_score_images_refuses_an_untrained_dimension_unless_allowed(mps_official_path, image_files, tmp_path, capsys):
    published = tmp_path / "published"  # imported as released: trained on overall only
    call_command("import_mps_checkpoint", str(mps_official_path), str(published))
    with pytest.raises(CommandError, match="trained on overall only, not on detail.*--allow-untrained-dimensions"):
        call_command("score_images", *image_files, prompt="x", checkpoint=str(published), dimension=["detail"])
    capsys.readouterr()
    call_command("score_images", *image_files, prompt="x", checkpoint=str(published), dimension=["detail"],
                 allow_untrained_dimensions=True, json=True)  # fmt: skip
    assert len(json.loads(capsys.readouterr().out)["scores"]["detail"]) == 2


def test_score_images_command_refuses_missing_and_broken_images(project_checkpoint, tmp_path):
    with pytest.raises(CommandError, match="no such image file"):
        call_command("score_images", str(tmp_path / "nope.png"), prompt="x", checkpoint=str(project_checkpoint))
    broken = tmp_path / "broken.png"
    broken.write_text("text, not pixels")
    with pytest.raises(CommandError, match="cannot read image"):
        call_command("score_images", str(broken), prompt="x", checkpoint=str(project_checkpoint))


@pytest.mark.django_db
def test_scoring_api_queues_a_job_and_returns_its_result(client, project_checkpoint, checkpoint_root):
    prompt, generator = make_prompt("a lighthouse at dusk"), make_generator()
    images = [make_image(prompt, generator), make_image(prompt, generator)]
    client.force_login(make_user(roles.ADMIN))
    body = {
        "image_ids": [image.pk for image in images],
        "dimensions": ["detail"],
        "checkpoint": str(project_checkpoint),
    }
    queued = client.post(reverse("training:score-jobs"), body, content_type="application/json")
    assert queued.status_code == 202
    job = client.get(queued.json()["status_url"]).json()
    assert job["state"] == "SUCCESS"
    direct = score_images(project_checkpoint, prompt.text, [image.file.path for image in images], ["detail"])
    assert job["result"]["images"] == body["image_ids"]
    assert job["result"]["scores"]["detail"] == pytest.approx(direct["scores"]["detail"])


@pytest.mark.django_db
def test_scoring_api_refuses_bad_requests_and_non_staff(client, project_checkpoint, checkpoint_root):
    image = make_image(make_prompt(), make_generator())
    client.force_login(make_user(roles.ANNOTATOR))
    url = reverse("training:score-jobs")
    body = {"image_ids": [image.pk], "checkpoint": str(project_checkpoint)}
    assert client.post(url, body, content_type="application/json").status_code == 403
    client.force_login(make_user(roles.ADMIN))
    unknown = client.post(url, {**body, "image_ids": [image.pk + 999]}, content_type="application/json")
    assert unknown.status_code == 400 and "unknown image ids" in unknown.json()["image_ids"][0]
    bad_dimension = client.post(url, {**body, "dimensions": ["beauty"]}, content_type="application/json")
    assert bad_dimension.status_code == 400
    absent = str(project_checkpoint.parent / "absent")
    no_checkpoint = client.post(url, {**body, "checkpoint": absent}, content_type="application/json")
    assert no_checkpoint.status_code == 400 and "no checkpoint at" in no_checkpoint.json()["checkpoint"][0]

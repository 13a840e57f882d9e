"""Images reach annotators and staff through mhp.media; nothing else under MEDIA_ROOT is served."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client, override_settings

from annotation import roles
from annotation.tests.factories import make_pair, make_user
from mhp.media import media_url

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pair():
    return make_pair()


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_annotator_gets_the_image_bytes(pair):
    image = pair.image_first
    response = _client(make_user(roles.ANNOTATOR)).get(media_url(image.file))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == image.file.open("rb").read()
    assert response["Cache-Control"].startswith("private")


def test_staff_without_the_labeling_role_may_see_images(pair):
    staff = make_user()
    staff.is_staff = True
    staff.save()
    assert _client(staff).get(media_url(pair.image_first.file)).status_code == 200


def test_anonymous_is_sent_to_log_in_and_a_user_without_the_role_refused(pair):
    url = media_url(pair.image_first.file)
    anonymous = _client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
    assert _client(make_user()).get(url).status_code == 403


@pytest.mark.parametrize(
    "name",
    ["imports/2026/11/prompts.jsonl", "images/../imports/2026/11/prompts.jsonl", "images/./x.png", "images\\x.png"],
)
def test_uploaded_import_files_are_never_served(pair, name):
    default_storage.save("imports/2026/11/prompts.jsonl", ContentFile(b'{"prompt": "secret"}\n'))
    response = _client(make_user(roles.ADMIN)).get(f"/media/{name}")
    assert response.status_code == 404


def test_missing_image_is_404_and_writes_are_refused(pair):
    annotator = _client(make_user(roles.ANNOTATOR))
    assert annotator.get("/media/images/00/missing.png").status_code == 404
    assert annotator.post(media_url(pair.image_first.file)).status_code == 405


@override_settings(MEDIA_ACCEL_REDIRECT="/_protected_media/")
def test_behind_nginx_the_answer_is_an_internal_redirect(pair):
    name = pair.image_first.file.name
    response = _client(make_user(roles.ANNOTATOR)).get(media_url(pair.image_first.file))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/_protected_media/{name}"
    assert response["Content-Type"] == "image/png"


S3_PROBE = """
import json, django
django.setup()
from django.conf import settings
from annotation.models import Image
from mhp.media import media_url
url = media_url(Image(file="images/ab/" + "ab" * 32 + ".png").file)
print(json.dumps({"url": url, "img_src": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"]}))
"""


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("", "https://mhp-media.s3.amazonaws.com/"),
        ("https://minio.example.test:9000", "https://minio.example.test:9000/"),
    ],
)
def test_with_a_bucket_browsers_get_a_signed_url_the_policy_allows(endpoint, origin):
    pytest.importorskip("boto3", reason="boto3 (requirements-dev.txt) signs S3 URLs")
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mhp.settings",
        "DEBUG": "1",
        "AWS_STORAGE_BUCKET_NAME": "mhp-media",
        "AWS_S3_REGION_NAME": "eu-west-1",
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLETEST",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
        "MEDIA_URL_EXPIRE_SECONDS": "600",
    }
    result = subprocess.run(
        [sys.executable, "-c", S3_PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    url = urlsplit(probe["url"])
    query = parse_qs(url.query)
    assert probe["url"].startswith(origin) and url.path.endswith(".png")
    # Signed (SigV4), valid for MEDIA_URL_EXPIRE_SECONDS, never a public URL.
    assert query["X-Amz-Expires"] == ["600"] and query["X-Amz-Signature"] and "X-Amz-Credential" in query
    allowed = [source for source in probe["img_src"] if source.startswith("http")]
    assert any(probe["url"].startswith(source.rstrip("/") + "/") for source in allowed), (probe["url"], allowed)

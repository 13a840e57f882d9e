"""The deployment's own nginx config (deploy/nginx/) in front of gunicorn: images reach annotators through
Django's X-Accel-Redirect, nobody else, and uploaded import files never (real nginx, real gunicorn)."""

import http.cookiejar
import re
import shutil
import ssl
import string
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation import roles
from annotation.tests.factories import make_pair, make_user
from mhp.media import media_url
from mhp.tests.services import ROOT, free_port, start_web, stop

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATE = ROOT / "deploy" / "nginx" / "mhp.conf.template"
MAIN_CONFIG = """
user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/mhp.conf;
}}
"""


def _certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(certificate), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return certificate, key


def _start_nginx(folder: Path, upstream: str, media_root: str) -> tuple[subprocess.Popen, int, int]:
    """nginx with the repository's template, filled in as the nginx image does it from the environment."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is needed for the media test (apt-get install nginx; .ci/run installs it)")
    certificate, key = _certificate(folder)
    http_port, https_port = free_port(), free_port()
    values = {
        "MHP_UPSTREAM": upstream,
        "MHP_HTTP_PORT": str(http_port),
        "MHP_HTTPS_PORT": str(https_port),
        "MHP_HTTPS_PORT_SUFFIX": f":{https_port}",
        "MHP_TLS_CERTIFICATE": str(certificate),
        "MHP_TLS_KEY": str(key),
        "MHP_MEDIA_ROOT": media_root,
    }
    config = string.Template(TEMPLATE.read_text()).safe_substitute(values)
    assert "${MHP_" not in config
    (folder / "mhp.conf").write_text(config)
    (folder / "nginx.conf").write_text(MAIN_CONFIG.format(tmp=folder))
    process = subprocess.Popen([nginx, "-p", str(folder), "-c", str(folder / "nginx.conf")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=2)
            return process, http_port, https_port
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None:
                pytest.fail(f"nginx stopped: {process.stderr.read().decode()}")
            time.sleep(0.1)
    process.kill()
    pytest.fail("nginx did not answer")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """HTTPS with cookies, no redirects followed, the test's self-signed certificate accepted."""

    def __init__(self, base: str) -> None:
        self.base = base
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(self.cookies),
            _NoRedirect,
        )

    def request(self, path: str, data: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        try:
            return self.opener.open(request, timeout=20)
        except urllib.error.HTTPError as error:  # 3xx (not followed) and 4xx arrive here
            return error

    def log_in(self, username: str) -> None:
        form = self.request("/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        answer = self.request(
            "/accounts/login/", {"csrfmiddlewaretoken": token, "username": username, "password": "pw-123456"}
        )
        assert answer.status == 302, answer.read()[:500]
        assert any(cookie.name == "sessionid" and cookie.secure for cookie in self.cookies)


@pytest.fixture
def deployment(tmp_path, settings, clean_redis):
    media_root = str(settings.MEDIA_ROOT)
    web, web_url = start_web(HTTPS="1", BEHIND_PROXY="1", MEDIA_ACCEL_REDIRECT="/_protected_media/")
    try:
        nginx, http_port, https_port = _start_nginx(tmp_path, web_url.removeprefix("http://"), media_root)
    except BaseException:
        stop(web)
        raise
    yield http_port, f"https://127.0.0.1:{https_port}"
    nginx.terminate()
    nginx.wait(timeout=20)
    stop(web)


def test_images_reach_annotators_through_nginx_and_nothing_else_does(deployment):
    http_port, base = deployment
    pair = make_pair()
    annotator = make_user(roles.ANNOTATOR)
    # gunicorn runs the production settings, whose hashers do not read the tests' fast MD5 hashes.
    annotator.password = PBKDF2PasswordHasher().encode("pw-123456", "harden-test-salt", iterations=1000)
    annotator.save(update_fields=["password"])
    default_storage.save("imports/2026/11/prompts.jsonl", ContentFile(b'{"prompt": "not for annotators"}\n'))
    image_path = media_url(pair.image_first.file)

    anonymous = Browser(base).request(image_path)
    assert anonymous.status == 302 and "/accounts/login/" in anonymous.headers["Location"]

    browser = Browser(base)
    browser.log_in(annotator.username)
    image = browser.request(image_path)
    assert image.status == 200
    assert image.headers["Content-Type"] == "image/png"
    assert image.read() == pair.image_first.file.open("rb").read()
    assert "X-Accel-Redirect" not in image.headers

    for path in ("/media/imports/2026/11/prompts.jsonl", "/_protected_media/imports/2026/11/prompts.jsonl"):
        assert browser.request(path).status == 404, path
    assert browser.request("/_protected_media/" + pair.image_first.file.name).status == 404

    page = browser.request("/label/")
    assert page.status == 200
    assert "max-age=" in page.headers["Strict-Transport-Security"]
    assert "script-src 'self' 'nonce-" in page.headers["Content-Security-Policy"]
    plain = urllib.request.build_opener(_NoRedirect).open
    with pytest.raises(urllib.error.HTTPError) as redirect:
        plain(f"http://127.0.0.1:{http_port}/label/", timeout=10)
    assert redirect.value.code == 301 and redirect.value.headers["Location"] == f"{base}/label/"

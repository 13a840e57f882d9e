"""Login lockout, API throttles, the password rules and the Content-Security-Policy, through real requests."""

import base64
import re

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from annotation import roles
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _log_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def test_wrong_passwords_lock_the_username_out_even_for_the_right_one(settings):
    user = make_user(roles.ANNOTATOR)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _log_in(client, user.username, "wrong").status_code == 200  # the form again, with its error
    locked = _log_in(client, user.username, "wrong")
    assert locked.status_code == 429 and b"too many login attempts" in locked.content
    assert _log_in(client, user.username, "pw-123456").status_code == 429
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not locked out.
    other = make_user(roles.ANNOTATOR)
    assert _log_in(Client(), other.username, "pw-123456").status_code == 302


def test_behind_the_proxy_the_lockout_counts_per_client_address(settings):
    settings.BEHIND_PROXY = True
    user = make_user(roles.ANNOTATOR)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(Client(HTTP_X_REAL_IP="203.0.113.7"), user.username, "wrong")
    assert _log_in(Client(HTTP_X_REAL_IP="203.0.113.7"), user.username, "pw-123456").status_code == 429
    # The same account from another address (nginx's X-Real-IP, not the proxy's own) still logs in.
    assert _log_in(Client(HTTP_X_REAL_IP="198.51.100.9"), user.username, "pw-123456").status_code == 302


def test_basic_auth_guesses_count_towards_the_lockout(settings):
    user = make_user(roles.ANNOTATOR)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.get(reverse("label-api:me"), HTTP_AUTHORIZATION=_basic(user.username, "wrong"))
    answer = client.get(reverse("label-api:me"), HTTP_AUTHORIZATION=_basic(user.username, "pw-123456"))
    assert answer.status_code in (401, 403, 429)
    assert _log_in(Client(), user.username, "pw-123456").status_code == 429


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture(params=["locmem", "redis"])
def throttle_cache(request, settings):
    """The throttle's counters in each cache a deployment has: per process, or shared in Redis."""
    if request.param == "redis":
        request.getfixturevalue("clean_redis")
        settings.CACHES = {
            "default": {"BACKEND": "mhp.cache.SharedClientRedisCache", "LOCATION": settings.TEST_REDIS_URL}
        }
    # Counters of earlier tests in this minute would count here: user ids repeat after a database flush.
    caches["default"].clear()
    return request.param


def test_api_throttle_answers_429_past_the_rate_per_user(settings, throttle_cache):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "3/minute"},
    }
    first, second = Client(), Client()
    first.force_login(make_user(roles.ANNOTATOR))
    second.force_login(make_user(roles.ANNOTATOR))
    statuses = [first.get(reverse("label-api:me")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = first.get(reverse("label-api:me"))
    assert 0 < int(refused["Retry-After"]) <= 61 and "throttled" in refused.json()["detail"]
    assert second.get(reverse("label-api:me")).status_code == 200


def test_the_default_rate_lets_an_annotator_work_at_benchmark_speed():
    client = Client()
    client.force_login(make_user(roles.ANNOTATOR))
    # Well past a person's pace (two calls a judgement, one judgement a second) within one minute.
    assert {client.get(reverse("label-api:me")).status_code for _ in range(300)} == {200}


def test_entirely_numeric_passwords_are_refused():
    with pytest.raises(ValidationError) as refused:
        validate_password("8675309124816")
    assert "password_entirely_numeric" in {error.code for error in refused.value.error_list}


def _staff():
    user = make_user(roles.ADMIN)
    user.is_superuser = True
    user.save()
    return user


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/", roles.ANNOTATOR),
        ("/label/", roles.ANNOTATOR),
        ("/prompts/filter/", roles.ANNOTATOR),
        ("/label/quality/", "staff"),
        ("/training/runs/", "staff"),
        ("/training/results/", "staff"),
        ("/admin/annotation/category/balance/", "staff"),
        ("/api/docs/", "staff"),
        (LOGIN, None),
    ],
)
def test_every_inline_script_and_style_carries_the_nonce_of_the_policy(path, who):
    client = Client()
    if who is not None:
        client.force_login(_staff() if who == "staff" else make_user(who))
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    html = response.content.decode()
    tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
    # JSON data blocks (type="application/json") never run, so the policy does not cover them.
    inline = [tag for tag in tags if "src=" not in tag and "application/json" not in tag]
    for tag in inline:
        nonce = re.search(r'nonce="([^"]+)"', tag)
        assert nonce and f"'nonce-{nonce.group(1)}'" in policy, tag
    # Nothing from another site: every script is this site's own.
    assert not re.search(r"<script[^>]+src=\"(https?:)?//", html)

"""API tokens from the user's own page (real Chromium, CSRF included), the error pages in the site's layout,
and a frozen version's statistics drawn as charts."""

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error
from rest_framework.authtoken.models import Token

from annotation import roles
from annotation.tests.factories import make_user


def _me(key: str):
    return Client().get("/api/label/me/", HTTP_AUTHORIZATION=f"Token {key}")


@pytest.mark.django_db(transaction=True)
def test_a_user_creates_uses_and_revokes_a_token_from_their_page(browser_login, live_server):
    annotator = make_user(roles.ANNOTATOR, username="ann")
    page = browser_login("ann")
    page.click("summary:has-text('Account')")
    page.click("a:has-text('API tokens')")
    page.wait_for_url(f"{live_server.url}/account/tokens/")
    assert page.locator("#no-tokens").is_visible()

    page.click("button[value=create]")
    key = page.locator("[data-token]").inner_text()
    assert Token.objects.get(user=annotator).key == key
    response = _me(key)
    assert response.status_code == 200 and response.json() == {"today": 0, "total": 0}

    # A new token replaces the old one: the old key stops working at once.
    page.click("button[value=create]")
    new_key = page.locator("[data-token]").inner_text()
    assert new_key != key and _me(key).status_code == 401 and _me(new_key).status_code == 200

    page.click("button[value=revoke]")
    page.wait_for_selector("#no-tokens")
    assert not Token.objects.filter(user=annotator).exists()
    response = _me(new_key)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_token_page_refuses_a_post_without_csrf_and_an_unknown_action():
    user = make_user(roles.ANNOTATOR)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("api-tokens"), {"action": "create"}).status_code == 403
    assert not Token.objects.exists()
    client = Client()
    client.force_login(user)
    assert client.post(reverse("api-tokens"), {"action": "steal"}).status_code == 400
    assert not Token.objects.exists()
    # Without a login the page sends to the login form.
    assert Client().get(reverse("api-tokens")).status_code == 302


@pytest.mark.django_db
def test_403_and_404_pages_keep_the_layout_and_the_users_nav(client):
    client.force_login(make_user(roles.ANNOTATOR))
    denied = client.get(reverse("annotation:label-quality"))
    assert denied.status_code == 403
    body = denied.content.decode()
    assert 'id="error-403"' in body and 'class="site"' in body and "favicon.svg" in body
    # The nav is the annotator's: their work, not the reviewer's pages.
    assert reverse("annotation:label-form") in body and reverse("annotation:label-disputes") not in body

    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    body = missing.content.decode()
    assert 'id="error-404"' in body and "/no/such/page/" in body and reverse("annotation:label-form") in body


def test_the_500_page_needs_neither_the_database_nor_a_user():
    # No django_db mark: any query would fail this test; the request has no `user` attribute.
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert 'id="error-500"' in body and 'class="site"' in body and "mhp.css" in body and "Log out" not in body


@pytest.mark.django_db
def test_a_frozen_versions_statistics_are_charts_not_json(client):
    from datasets.models import DatasetStatus, DatasetVersion

    stats = {
        "pairs": 8,
        "splits": {"test": 2, "train": 4, "val": 2},
        "prompts": {"test": 1, "train": 2, "val": 1},
        "categories": {"train": {"animals": 3, "food": 1}, "val": {"animals": 2}, "test": {"food": 2}},
        "generators": {"train": {"g1": 5, "g2": 3}, "val": {"g1": 2}, "test": {"g2": 4}},
        "labels": {"train": {"overall": {"first": 3, "tie": 1}}, "test": {"overall": {"second": 2}}},
    }
    version = DatasetVersion.objects.create(
        name="v1", status=DatasetStatus.FROZEN, stats=stats, frozen_at="2026-01-01T00:00Z"
    )
    client.force_login(make_user(roles.ADMIN))
    body = client.get(reverse("admin:datasets_datasetversion_change", args=[version.pk])).content.decode()
    assert '"splits": {' not in body and "&quot;splits&quot;" not in body  # no raw JSON
    assert 'id="stats-categories"' in body and 'id="stats-labels"' in body
    # Categories over all splits, largest first: animals 5 (the full bar), food 3.
    assert body.index('data-key="animals"') < body.index('data-key="food"')
    assert 'data-value="5" width="240.0"' in body and 'data-value="3" width="144.0"' in body
    # The overall labels: first 3, second 2, tie 1 of 6 as one stacked bar.
    assert 'class="label-first" data-value="3" x="0.0" width="120.0"' in body
    assert 'class="label-second" data-value="2" x="120.0" width="80.0"' in body


@pytest.mark.django_db
def test_the_schema_documents_token_authentication(client):
    client.force_login(make_user(roles.ADMIN))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    security = schema["paths"]["/api/label/me/"]["get"]["security"]
    assert {"tokenAuth": []} in security and security[0] == {"cookieAuth": []}

"""Inputs refused at the door with a 400 that names the problem: NUL characters in query strings and form
fields, JSON nested too deep or holding NUL, and ids that name nothing."""

import pytest
from django.urls import reverse

from annotation import roles
from annotation.models import Prompt, PromptReview
from annotation.tests.factories import make_prompt, make_user
from mhp.inputs import JSON_MAX_DEPTH, json_problem

pytestmark = pytest.mark.django_db


def test_json_problem_names_depth_and_nul():
    assert json_problem({"a": [1, "x", {"b": None}]}) is None
    nested = []
    for _ in range(JSON_MAX_DEPTH):
        nested = [nested]
    assert json_problem(nested) == f"JSON nested deeper than {JSON_MAX_DEPTH} levels"
    assert json_problem({"ok": ["fine", "a\x00b"]}) == json_problem({"k\x00": 1}) and json_problem({"k\x00": 1})


@pytest.mark.parametrize(
    "url",
    [
        "/api/prompts/?search=%00",
        "/admin/annotation/prompt/?q=a%00b",
        "/admin/autocomplete/?term=%00&app_label=annotation&model_name=prompt&field_name=near_duplicate_of",
        "/label/?x=%00",
    ],
)
def test_nul_in_a_query_string_is_400(client, url):
    client.force_login(make_user(roles.ADMIN))
    response = client.get(url)
    assert response.status_code == 400 and b"NUL" in response.content


def test_nul_in_json_is_400_and_stores_nothing(client):
    client.force_login(make_user(roles.ADMIN))
    body = '{"category": "anim\\u0000als", "requested_count": 5}'
    response = client.post("/api/prompts/augmentation-jobs/", body, content_type="application/json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


@pytest.mark.parametrize("page", ["annotation:prompt-filter", "annotation:prompt-disagreements"])
@pytest.mark.parametrize("prompt_id", ["999999", str(2**63)])
def test_a_prompt_id_that_names_nothing_is_a_message_not_a_500(client, page, prompt_id):
    make_prompt("a lighthouse in fog")
    client.force_login(make_user(roles.ADMIN))
    response = client.post(reverse(page), {"prompt_id": prompt_id, "decision": "accept"}, follow=True)
    assert response.status_code == 200
    assert "no prompt 999999" in response.content.decode() or "not understood" in response.content.decode()
    assert PromptReview.objects.count() == 0 and Prompt.objects.get().status == "pending"

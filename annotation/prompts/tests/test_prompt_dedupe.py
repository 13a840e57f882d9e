import pytest
from django.urls import reverse

from annotation import roles
from annotation.models import Prompt, PromptStatus
from annotation.prompts.services.dedupe import prompt_near_duplicates_mark
from annotation.tests.factories import make_prompt, make_user

pytestmark = pytest.mark.django_db

DISTINCT = [
    "a lighthouse on a rocky cliff at dawn, oil painting, dramatic sky",
    "portrait of an old fisherman with a grey beard, charcoal sketch",
    "a bowl of steaming ramen with a soft boiled egg, food photography",
    "a cyberpunk city street at night with neon signs and rain, cinematic",
    "a fox sleeping in a snowy forest, watercolor illustration",
    "an astronaut riding a horse on the moon, digital art",
    "a cozy reading nook with plants and warm lamp light, interior design photo",
    "a medieval castle on a hill surrounded by fog, matte painting",
]
# (near-duplicate, the distinct prompt it copies): a few words changed, or the keyword list reordered.
NEAR = [
    ("a lighthouse on a rocky cliff at sunrise, oil painting, dramatic sky", 0),
    ("digital art, an astronaut riding a horse on the moon", 5),
    ("a cyberpunk city street at night with neon lights and rain, cinematic", 3),
]


def _plant():
    distinct = [make_prompt(text) for text in DISTINCT]
    near = [make_prompt(text) for text, _ in NEAR]
    return distinct, near


def test_planted_near_duplicates_are_grouped_under_the_oldest_and_distinct_left_alone():
    distinct, near = _plant()
    result = prompt_near_duplicates_mark()
    assert result.groups == 3 and sorted(result.newly_marked) == sorted(p.pk for p in near)
    for prompt, (_, original) in zip(near, NEAR, strict=True):
        prompt.refresh_from_db()
        assert prompt.near_duplicate_of_id == distinct[original].pk
        assert (prompt.status, prompt.rejection_reasons) == (PromptStatus.REJECTED, ["duplicate"])
    untouched = Prompt.objects.filter(pk__in=[p.pk for p in distinct])
    assert set(untouched.values_list("status", "near_duplicate_of")) == {(PromptStatus.PENDING, None)}


def test_exact_duplicates_by_normalised_text_are_never_stored_twice():
    first = make_prompt("A Fox  in the SNOW, watercolor")
    for variant in (
        "a fox in the snow,, watercolor.",
        "ａ fox in the snow , watercolor",
        " A FOX\tIN THE SNOW , WATERCOLOR;; ",
    ):
        assert make_prompt(variant).pk == first.pk
    assert Prompt.objects.count() == 1


def test_second_run_marks_nothing_and_keeps_human_decisions():
    distinct, near = _plant()
    Prompt.objects.filter(pk=near[0].pk).update(status=PromptStatus.ACCEPTED)
    prompt_near_duplicates_mark()
    near[0].refresh_from_db()
    assert near[0].status == PromptStatus.ACCEPTED and near[0].near_duplicate_of_id == distinct[0].pk
    assert prompt_near_duplicates_mark().newly_marked == []


def test_short_prompts_are_not_called_near_duplicates():
    make_prompt("a cat")
    make_prompt("a dog")
    make_prompt("cat a")
    assert prompt_near_duplicates_mark().groups == 0


def test_admin_sees_groups_with_the_kept_member(client):
    distinct, near = _plant()
    prompt_near_duplicates_mark()
    client.force_login(make_user(roles.ADMIN))
    response = client.get(reverse("admin:annotation_prompt_near_duplicates"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-group="{distinct[0].pk}"' in page and NEAR[0][0] in page
    assert f'data-group="{distinct[1].pk}"' not in page


def test_annotator_cannot_see_groups(client):
    client.force_login(make_user(roles.ANNOTATOR))
    response = client.get(reverse("admin:annotation_prompt_near_duplicates"))
    assert response.status_code == 302 and "/admin/login/" in response.url


WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def test_an_import_leaves_existing_prompts_it_flags_pending_and_lists_them(tmp_path):
    from annotation.prompts.services.imports import prompts_import

    # A and B are not near-duplicates of each other (Jaccard 8/12); the new C is one of both (9/11), so
    # one group holds all three and the older B is newly linked to A.
    older_a, older_b = make_prompt(" ".join(WORDS[0:10])), make_prompt(" ".join(WORDS[2:12]))
    upload = tmp_path / "new.txt"
    upload.write_text(" ".join(WORDS[1:11]) + "\n")
    summary = prompts_import(path=upload)

    newcomer = Prompt.objects.get(text=" ".join(WORDS[1:11]))
    assert (newcomer.status, newcomer.near_duplicate_of_id) == ("rejected", older_a.pk)
    older_b.refresh_from_db()
    assert (older_b.status, older_b.near_duplicate_of_id) == ("pending", older_a.pk)  # a person decides
    assert summary.near_duplicates == 1
    assert summary.as_dict()["existing_flagged"] == [
        {"id": older_b.pk, "text": older_b.text, "matched_id": older_a.pk, "matched_text": older_a.text}
    ]

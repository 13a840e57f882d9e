"""The prompt filter form in a real headless Chromium: a reason and Enter reject, subcategories follow the
category, a shortcut never moves a focused list, the count of what is left, and the way back."""

import pytest

from annotation import roles
from annotation.models import Category, Prompt, PromptReview
from annotation.tests.factories import make_prompt, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _open(browser_login, live_server, username: str):
    make_user(roles.ANNOTATOR, username=username)
    page = browser_login(username)
    page.goto(f"{live_server.url}/prompts/filter/")
    return page


def test_a_reason_and_enter_reject_and_the_way_back_changes_the_review(browser_login, live_server):
    first, second = make_prompt("a cat made of smoke"), make_prompt("a tower of teacups")
    page = _open(browser_login, live_server, "filterer")
    assert page.inner_text("#prompts-left").startswith("2 prompts left")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"text=Prompt #{first.pk} rejected.")
    assert Prompt.objects.get(pk=first.pk).status == "rejected"
    assert page.inner_text("#prompts-left").startswith("1 prompt left")

    page.keyboard.press("Backspace")  # back to the prompt just judged
    page.wait_for_selector("text=Changing your review")
    assert page.input_value("[name=prompt_id]") == str(first.pk)
    assert page.is_checked("input[data-key='1']")
    page.keyboard.press("1")  # the reason off again, then accept
    page.keyboard.press("a")
    page.wait_for_selector(f"text=Prompt #{first.pk} changed: accepted.")
    assert Prompt.objects.get(pk=first.pk).status == "accepted"
    assert PromptReview.objects.filter(prompt=first).count() == 1
    assert page.input_value("[name=prompt_id]") == str(second.pk)


def test_subcategories_follow_the_category_and_keys_never_move_a_focused_list(browser_login, live_server):
    make_prompt("a fox in the snow")
    animals = Category.objects.get(slug="animals")
    page = _open(browser_login, live_server, "lists")
    page.select_option("#category", str(animals.pk))
    visible = page.eval_on_selector_all("#subcategory option", "os => os.filter(o => !o.hidden).map(o => o.value)")
    expected = [""] + [str(pk) for pk in animals.children.values_list("pk", flat=True)]
    assert sorted(visible) == sorted(expected)
    page.focus("#category")
    page.keyboard.press("2")  # a reason shortcut, not a jump in the list
    assert page.input_value("#category") == str(animals.pk)
    assert page.is_checked("input[data-key='2']")

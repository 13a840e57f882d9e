"""A real headless Chromium: an annotator judges three pairs with the keyboard only."""

import pytest

from annotation import roles
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import Image, Judgement
from annotation.tests.factories import make_user

# Per row, in order: aesthetics, detail, alignment, overall.
KEYS = ("ArrowLeft", "2", "ArrowRight", "1")
EXPECTED_SCREEN = ("left", "tie", "right", "left")


def _shown_images(page) -> tuple[int, int]:
    def image_id(selector: str) -> int:
        sha = page.get_attribute(selector, "src").rsplit("/", 1)[-1].split(".")[0]
        return Image.objects.get(sha256=sha).pk

    return image_id("#left-image"), image_id("#right-image")


@pytest.mark.django_db(transaction=True)
def test_an_annotator_judges_three_pairs_with_the_keyboard(browser_login, live_server):
    make_pairs(5)
    make_user(roles.ANNOTATOR, username="kbd")
    page = browser_login("kbd")
    page.goto(f"{live_server.url}/label/")
    shown = []
    for done in range(1, 4):
        pair_id = int(page.input_value("#judgement-form [name=pair_id]"))
        shown.append((pair_id, *_shown_images(page)))
        for key in KEYS:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(f"document.getElementById('today-count').textContent === '{done}'")
        page.wait_for_function(f"document.querySelector('#judgement-form [name=pair_id]').value !== '{pair_id}'")

    judgements = {judgement.pair_id: judgement for judgement in Judgement.objects.select_related("pair")}
    assert sorted(judgements) == sorted(pair_id for pair_id, _, _ in shown)
    for pair_id, left_id, _ in shown:
        judgement = judgements[pair_id]
        # The recorded side matches what the browser showed, and "left" means the image on the left.
        assert judgement.left_side == ("first" if left_id == judgement.pair.image_first_id else "second")
        first_on_left = judgement.pair.image_first_id == left_id
        expected = [
            {"left": "first", "right": "second", "tie": "tie"}[answer]
            if first_on_left
            else {"left": "second", "right": "first", "tie": "tie"}[answer]
            for answer in EXPECTED_SCREEN
        ]
        assert [judgement.aesthetics, judgement.detail, judgement.alignment, judgement.overall] == expected
        assert judgement.duration_ms > 0

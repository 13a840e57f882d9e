"""The labeling page for long days, in a real headless Chromium: it fits a 1280 x 720 window whatever the
images' size, keeps answers through a server outage (sent once each when the server is back), and goes
back to the pair just judged to change its answers."""

import io

import pytest
from PIL import Image as PILImage

from annotation import roles
from annotation.images.services.pairs import pair_get_or_create
from annotation.images.services.store import image_store
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.models import Judgement
from annotation.tests.factories import make_generator, make_prompt, make_user

pytestmark = pytest.mark.django_db(transaction=True)
ALL_LEFT = ("ArrowLeft",) * 4


def _big_pair() -> None:
    prompt, generator = make_prompt(), make_generator()
    images = []
    for shade in (40, 200):
        buffer = io.BytesIO()
        PILImage.new("RGB", (1024, 1024), (shade, 90, 160)).save(buffer, "PNG")
        images.append(image_store(prompt=prompt, generator=generator, data=buffer.getvalue(), seed=shade)[0])
    pair_get_or_create(image_a=images[0], image_b=images[1])


def _open(browser_login, live_server, page, username: str):
    make_user(roles.ANNOTATOR, username=username)
    page.set_viewport_size({"width": 1280, "height": 720})
    browser_login(username)
    page.goto(f"{live_server.url}/label/")
    page.wait_for_selector("#judgement-form")
    return page


def _answer(page, keys=ALL_LEFT) -> int:
    pair_id = int(page.input_value("#judgement-form [name=pair_id]"))
    for key in keys:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    return pair_id


def _inside_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720 and box["x"] + box["width"] <= 1280


def test_both_images_the_four_rows_and_submit_fit_1280_by_720(browser_login, live_server, page):
    _big_pair()
    _open(browser_login, live_server, page, "fit")
    page.wait_for_function("document.getElementById('left-image').complete")
    for selector in ("#left-image", "#right-image", "tr[data-key=overall]", "#submit-button"):
        assert _inside_viewport(page, selector), selector
    assert page.locator("#left-image").bounding_box()["height"] > 200  # scaled to the space, not to nothing


def test_answers_made_while_the_server_is_down_are_stored_once_each_when_it_is_back(browser_login, live_server, page):
    make_pairs(6)
    _open(browser_login, live_server, page, "offline")
    page.wait_for_function("document.getElementById('labeling').dataset.upcoming === '2'")
    page.route("**/api/label/**", lambda route: route.abort())  # the server is gone
    answered = []
    for done in range(3):
        answered.append(_answer(page))
        if done < 2:
            page.wait_for_function(
                f"document.querySelector('#judgement-form [name=pair_id]').value !== '{answered[-1]}'"
            )
    page.wait_for_selector("#offline:not([hidden])")
    assert "3 answers waiting" in page.inner_text("#offline")
    assert Judgement.objects.count() == 0

    page.unroute("**/api/label/**")  # the server is back: the page sends them by itself
    page.wait_for_function("document.getElementById('labeling').dataset.waiting === '0'", timeout=30_000)
    assert page.locator("#offline").is_hidden()
    assert sorted(Judgement.objects.values_list("pair_id", flat=True)) == sorted(answered)
    page.wait_for_function("document.getElementById('today-count').textContent === '3'")


def test_back_to_the_pair_just_judged_changes_its_answers_in_place(browser_login, live_server, page):
    make_pairs(4)
    _open(browser_login, live_server, page, "back")
    first = _answer(page, ALL_LEFT)
    page.wait_for_function(f"document.querySelector('#judgement-form [name=pair_id]').value !== '{first}'")
    page.wait_for_function("document.getElementById('labeling').dataset.waiting === '0'")
    page.keyboard.press("Backspace")
    page.wait_for_function(f"document.querySelector('#judgement-form [name=pair_id]').value === '{first}'")
    assert page.is_checked("tr[data-key=overall] input[value=left]")  # the answers given, shown again
    page.click("tr[data-key=overall] input[value=right]")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('status').textContent === 'Changed.'")
    judgement = Judgement.objects.get()
    screen_right = "first" if judgement.left_side == "second" else "second"
    assert (judgement.pair_id, judgement.overall) == (first, screen_right)
    assert judgement.aesthetics != judgement.overall  # the other rows kept the first answer (left)

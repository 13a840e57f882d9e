import pytest

from annotation import roles
from annotation.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_annotator_logs_in_and_out_in_a_real_browser(browser_login, live_server):
    make_user(roles.ANNOTATOR, username="ann")
    page = browser_login("ann")
    assert "Your roles: annotator" in page.inner_text("main")
    page.click("text=Log out")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url

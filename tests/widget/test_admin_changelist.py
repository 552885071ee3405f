"""The admin's conversation list in Chromium, at a laptop's 1280 px: every column on screen, no
horizontal scrolling, whatever the visitors wrote.

(Beside the widget's Chromium tests for their fixtures, as the admin's pages under the policy.)
"""

import pytest

from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS, staff_member

pytestmark = pytest.mark.browser

# A title is the first 100 characters of the visitor's first message: one unbroken word here.
UNBROKEN = "https://shop.example/orders/" + "A1B2C3D4E5" * 20
WORDY = "Where is my order? I ordered a blue winter jacket in size M three weeks ago " * 3
ORIGIN = "https://" + "a-very-long-subdomain-of-the-customers-shop." * 5 + "example"


@pytest.fixture(scope="module")
def server(live_server_factory):
    return live_server_factory()


@pytest.fixture
def conversations(default_assistant):
    made = []
    for first in (UNBROKEN, WORDY, "Hi"):
        made.append(
            conversation(
                default_assistant,
                visitor(first[:1000]),
                reply("A" * 3000, prompt_tokens=123_456, completion_tokens=654_321,
                      feedback_rating="down", feedback_comment="x" * 500),
                visitor("more " * 100),
                reply("", status="error", error_code="llm_timeout"),
                origin=ORIGIN[:255],
                title=first[:100],
            )
        )  # fmt: skip
    return made


@pytest.fixture
def admin_list(server, conversations, django_user_model, new_page):
    staff_member(django_user_model, "ada", is_staff=True, is_superuser=True)
    page = new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/admin/login/?next=" + ADMIN_CONVERSATIONS)
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**" + ADMIN_CONVERSATIONS)
    return page


def test_the_list_fits_1280_px_without_scrolling_sideways(admin_list):
    widths = admin_list.evaluate(
        """() => {
          const page = document.scrollingElement, results = document.querySelector(".results");
          return {page: [page.scrollWidth, page.clientWidth],
                  results: [results.scrollWidth, results.clientWidth]};
        }"""
    )

    assert widths["page"][0] <= widths["page"][1], widths
    assert widths["results"][0] <= widths["results"][1], widths


@pytest.mark.parametrize("column", ["feedback", "origin", "error_count", "total_tokens"])
def test_every_column_is_in_view(admin_list, column):
    # Within the list's box, which clips what is wider (it scrolls), and within the window.
    right, visible = admin_list.locator(f"#result_list th.column-{column}").evaluate(
        """th => [th.getBoundingClientRect().right,
                  th.closest(".results").getBoundingClientRect().right]"""
    )

    assert right <= visible <= 1280


def test_a_long_title_is_cut_short_with_the_whole_of_it_on_hover(admin_list):
    cell = admin_list.locator("td.field-title [title]").filter(has_text="shop.example/orders")

    assert cell.get_attribute("title") == UNBROKEN[:100]
    shown, whole = cell.evaluate("el => [el.clientWidth, el.scrollWidth]")
    assert shown < whole  # cut, with an ellipsis, not wrapped or overflowing

"""The chat host's own HTML pages in Chromium, each under the Content-Security-Policy it is
served with: the demo, the admin and the API docs work and nothing on them is refused.

(Beside the widget's Chromium tests for their fixtures; the policy is never bypassed.)
"""

import pytest
from playwright.sync_api import expect

from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS, ADMIN_OVERVIEW, admin_page_of, staff_member
from tests.widget.widget import Widget

pytestmark = pytest.mark.browser

# Chromium reports what a policy refuses as a `securitypolicyviolation` event (and a console
# error); this runs first in every document the page opens.
RECORD_REFUSALS = """
window.refused = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.refused.push(`${event.effectiveDirective}: ${event.blockedURI || "inline"} (${where})`);
});
"""


@pytest.fixture(scope="module")
def server(live_server_factory):
    return live_server_factory()


@pytest.fixture
def page(new_page):
    page = new_page()
    page.add_init_script(RECORD_REFUSALS)
    return page


def visit(page, url: str) -> None:
    """Open a page served with the site's policy, and let it finish what it loads."""
    response = page.goto(url, wait_until="networkidle")
    assert response.ok, response.status
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy


def refused(page) -> list[str]:
    """What the policy refused on the current page, as events and as console errors so far.

    (Other console errors are not counted: the admin has no favicon, and Chromium reports
    the 404 of /favicon.ico whenever it gets to it.)
    """
    console = [error for error in page.console_errors if "Content Security Policy" in error]
    return page.evaluate("window.refused") + console


def test_the_demo_page_and_its_widget_run_under_the_policy(server, default_assistant, page):
    visit(page, server.url + "/")
    widget = Widget(page).ready().open()
    widget.send("Hello")
    expect(widget.replies.last.locator(".b")).to_contain_text("[Demo mode]")
    assert refused(page) == []


def test_the_admin_login_page_runs_under_the_policy(server, transactional_db, page):
    visit(page, server.url + "/admin/login/")
    expect(page.get_by_label("Username")).to_be_visible()
    assert refused(page) == []


def test_staff_use_the_admin_under_the_policy(server, default_assistant, django_user_model, page):
    staff_member(django_user_model, "ada", is_staff=True, is_superuser=True)
    talk = conversation(default_assistant, visitor("Where is my order?"), reply("On its way."))

    visit(page, server.url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#chatkit-overview")).to_be_visible()
    assert refused(page) == []

    visit(page, server.url + ADMIN_CONVERSATIONS)
    page.locator("#action-toggle").check()  # the admin's own scripts at work
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    assert refused(page) == []

    visit(page, server.url + ADMIN_OVERVIEW)
    expect(page.locator("svg.chart").first).to_be_visible()
    assert refused(page) == []

    visit(page, server.url + admin_page_of(talk))
    expect(page.locator(".transcript-message")).to_have_count(2)
    assert refused(page) == []

    visit(page, f"{server.url}/admin/conversations/assistant/{default_assistant.pk}/change/")
    expect(page.get_by_role("link", name="Open the demo page")).to_be_visible()
    assert refused(page) == []


def test_the_api_docs_render_under_the_policy(server, transactional_db, page):
    visit(page, server.url + "/api/docs")
    operation = page.locator(".opblock").first
    expect(operation).to_be_visible()
    operation.locator(".opblock-summary").click()
    expect(operation.locator(".opblock-body")).to_be_visible()
    assert refused(page) == []

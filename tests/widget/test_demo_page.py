"""The demo page in a real browser, against uvicorn, in demo mode."""

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(live_server_factory):
    return live_server_factory()


def test_a_visitor_chats_reloads_and_starts_over(server, default_assistant, page):
    page.goto(server.url + "/")
    expect(page.locator("#chat-name")).to_have_text(default_assistant.name)
    expect(page.locator("#chat-mode")).to_be_visible()

    page.fill("#chat-input", "Hello <img src=x onerror=alert(1)>")
    page.click("#chat-send")

    log = page.locator("#chat-log li")
    expect(log.filter(has_text="[Demo mode]")).to_have_count(1)
    expect(page.locator("#chat-log li.user")).to_have_text(["Hello <img src=x onerror=alert(1)>"])
    # Text stays text: the markup the visitor typed (and the model echoed) is not an element.
    assert page.locator("#chat-log img").count() == 0

    page.reload()
    expect(log.filter(has_text="[Demo mode]")).to_have_count(1)
    session_id = page.evaluate("localStorage.getItem('chatkit-demo-session:default')")
    assert httpx.get(f"{server.url}/api/v1/sessions/{session_id}").status_code == 200

    page.click("#chat-reset")
    expect(log.filter(has_text="[Demo mode]")).to_have_count(0)
    assert httpx.get(f"{server.url}/api/v1/sessions/{session_id}").status_code == 404
    assert page.console_errors == []


def test_errors_are_shown_to_the_visitor(server, default_assistant, page):
    page.goto(server.url + "/?assistant=does-not-exist")
    expect(page.locator("#chat-error")).to_have_text("Assistant not found.")

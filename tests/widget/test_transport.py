"""The widget against chat hosts unlike ours: a proxy that rewrites line ends, a slow server.

The customer's page names a stand-in chat host with `data-api-url` (the same origin as the
page here), which answers the v1 API with what the test scripted.
"""

import json

import pytest
from playwright.sync_api import expect

from tests.widget.host import embed
from tests.widget.widget import Widget

pytestmark = pytest.mark.browser

SESSION = "s" * 32
CONFIG = {
    "slug": "default", "name": "Stand-in", "greeting": "", "starter_prompts": [],
    "accent_color": "#2563eb", "max_message_chars": 1000, "mode": "live", "notice": "",
    "privacy_url": "", "retention_days": 30,
}  # fmt: skip


def message(seq: int, role: str, content: str) -> str:
    return json.dumps(
        {"seq": seq, "role": role, "content": content, "status": "complete",
         "created_at": "2026-11-30T10:00:00Z", "model": None, "usage": None, "ttft_ms": None,
         "duration_ms": None, "finish_reason": None, "feedback": None}
    )  # fmt: skip


@pytest.fixture
def stand_in(host_site, chat):
    """A page whose widget talks to a stand-in chat host: the host site itself."""
    host_site.file("/api/v1/assistants/default", json.dumps(CONFIG), "application/json")
    host_site.file(
        "/api/v1/sessions",
        json.dumps({"id": SESSION, "assistant": "default", "created_at": "2026-11-30T10:00:00Z",
                    "messages": [], "has_more": False}),
        "application/json",
    )  # fmt: skip
    # The script itself still comes from the real chat host, as a customer's would.
    return host_site.page("/stand-in", embed(chat.url, attrs=f'data-api-url="{host_site.url}"'))


def test_a_stream_with_crlf_line_ends_split_between_packets(page, host_site, stand_in):
    user, reply = message(1, "user", "Hi"), message(2, "assistant", "Hello")
    host_site.stream(
        f"/api/v1/sessions/{SESSION}/messages",
        [
            f"event: message\r\ndata: {user}\r\n\r\nevent: delta\r".encode(),
            b'\ndata: {"text": "Hel"}\r\n\r\n: ping\r\n\r\nevent: del',
            b'ta\r\ndata: {"text": "lo"}\r\n\r',
            b"\nevent: done\r",
            f"\ndata: {reply}\r\n\r\n".encode(),
        ],
        "text/event-stream",
    )
    page.goto(stand_in)
    widget = Widget(page).ready().open()
    # (A function: Playwright would call the unsubscribe function an expression returns.)
    page.evaluate("() => { ChatKit.on('message', (m) => (window.seen ||= []).push(m.role)); }")
    widget.send("Hi")

    expect(widget.replies.last.locator(".b")).to_have_text("Hello")
    expect(widget.replies.last.locator(".fb")).to_be_visible()  # complete, with its seq
    expect(widget.visitor).to_have_text(["Hi"])
    assert page.evaluate("window.seen") == ["user", "assistant"]  # one event each, no strays
    assert page.console_errors == []


def test_text_that_could_not_be_sent_comes_back_before_a_new_draft(page, host_site, stand_in):
    busy = {"error": {"code": "reply_in_progress", "message": "A reply is being written."}}
    host_site.file(
        f"/api/v1/sessions/{SESSION}/messages",
        json.dumps(busy),
        "application/json",
        **{"X-Delay": "1.5", "X-Status": "409"},
    )
    page.goto(stand_in)
    widget = Widget(page).ready().open()
    widget.send("First question")
    expect(widget.visitor).to_have_count(1)
    widget.input.fill("Second draft")  # typed while the first one is on its way

    expect(widget.alert_text).to_have_text("A reply is still being written. Try again shortly.")
    expect(widget.input).to_have_value("First question\nSecond draft")
    expect(widget.visitor).to_have_count(0)


def test_stop_before_the_server_answers_gives_the_text_back(page, host_site, stand_in):
    host_site.stream(
        f"/api/v1/sessions/{SESSION}/messages", [b""], "text/event-stream", **{"X-Delay": "3"}
    )
    page.goto(stand_in)
    widget = Widget(page).ready().open()
    widget.send("Are you there?")
    expect(widget.visitor).to_have_count(1)
    widget.stop_button.click()

    # Nothing is known to be stored: no bubble claims otherwise, and nothing typed is lost.
    expect(widget.visitor).to_have_count(0)
    expect(widget.input).to_have_value("Are you there?")
    expect(widget.alert).to_be_hidden()

"""A visitor's whole journey with the widget, on a customer's site, against a real server.

The customer's page is on another origin under a strict Content-Security-Policy; the chat
runs in uvicorn and answers through the fake OpenAI-compatible model.
"""

import pytest
from playwright.sync_api import expect

from conversations.models import Message, Session
from tests.widget.conftest import eventually
from tests.widget.host import embed, strict_csp
from tests.widget.widget import Widget

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("default_assistant")]


@pytest.fixture
def site(host_site, chat):
    return host_site.page("/shop", embed(chat.url), csp=strict_csp(chat.url))


@pytest.fixture
def widget(page, site):
    page.goto(site)
    return Widget(page).ready()


def stored_reply(session_id: str, seq: int) -> Message:
    return Message.objects.get(session__public_id=session_id, seq=seq)


def test_a_visitor_chats_stops_retries_reloads_rates_and_starts_over(
    widget, page, chat, fake, default_assistant
):
    default_assistant.greeting = "Hi! Ask me about **orders**."
    default_assistant.starter_prompts = ["Where is my order?", "Do you ship abroad?"]
    default_assistant.save()

    # Open: the greeting and the starter prompts of an empty conversation.
    widget.open()
    expect(widget.title).to_have_text(default_assistant.name)
    expect(widget.replies).to_have_count(1)
    expect(widget.replies.first.locator("strong")).to_have_text("orders")
    expect(widget.starters).to_have_text(["Where is my order?", "Do you ship abroad?"])

    # A starter prompt sends itself; the reply streams into its bubble as it is written (the
    # model holds after two tokens until the test releases it).
    fake.configure(reply_tokens=6, hold_after=2)
    widget.starters.first.click()
    expect(widget.visitor).to_have_text(["Where is my order?"])
    assert widget.focused() == "textarea"  # not lost with the starter buttons, now gone
    reply = widget.replies.nth(1)
    expect(reply.locator(".b")).to_have_text("tok0 tok1")  # shown before the reply is done
    expect(widget.stop_button).to_be_visible()
    fake.release()
    expect(reply.locator(".b")).to_have_text("tok0 tok1 tok2 tok3 tok4 tok5")
    expect(widget.root.locator(".st")).to_be_hidden()
    session_id = widget.session_id(chat.url)
    # Stored with its last piece (the browser may show the text a moment before).
    eventually(lambda: stored_reply(session_id, 2).content == "tok0 tok1 tok2 tok3 tok4 tok5")

    # Stop: the request is aborted; the server keeps the text so far as `interrupted`.
    fake.reset()
    fake.configure(reply_tokens=40, hold_after=2)
    widget.send("Tell me everything")
    stopping = widget.replies.nth(2)
    expect(stopping.locator(".b")).to_have_text("tok0 tok1")
    widget.stop_button.click()
    expect(stopping).to_contain_text("Stopped.")
    expect(widget.send_button).to_be_visible()
    interrupted = eventually(
        lambda: (m := stored_reply(session_id, 4)).status == "interrupted" and m
    )
    assert interrupted.content == "tok0 tok1 "
    assert fake.wait_for_disconnect()  # nobody pays for tokens nobody reads

    # A model failure: the reply is marked failed, with a Retry that sends the text again.
    fake.reset()
    fake.configure(reply_tokens=3, fault="status", fault_status=500, fault_count=1)
    widget.send("Are you there?")
    failed = widget.replies.nth(3)
    expect(failed).to_contain_text("The assistant could not answer. Try again.")
    expect(failed).to_have_class("m a f")
    expect(widget.live).to_have_text("The assistant could not answer. Try again.")  # read out
    failed.get_by_role("button", name="Retry").click()
    expect(widget.replies.nth(4).locator(".b")).to_have_text("tok0 tok1 tok2")
    expect(failed).to_contain_text("The assistant could not answer")  # still shown, failed
    expect(failed.get_by_role("button", name="Retry")).to_have_count(0)
    expect(widget.visitor).to_have_text(
        ["Where is my order?", "Tell me everything", "Are you there?", "Are you there?"]
    )

    # Feedback on a reply, stored; pressing the same thumb again clears it.
    latest = widget.replies.nth(4)
    latest.get_by_role("button", name="Helpful", exact=True).click()
    expect(latest.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    assert eventually(lambda: stored_reply(session_id, 8).feedback_rating == "up")
    latest.get_by_role("button", name="Not helpful").click()
    expect(latest.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(latest.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )
    assert eventually(lambda: stored_reply(session_id, 8).feedback_rating == "down")

    # Reload: the panel was open, so the conversation is back at once, as it ended.
    page.reload()
    expect(widget.panel).to_be_visible()
    expect(widget.visitor).to_have_count(4)
    expect(widget.replies).to_have_count(4)  # no greeting in a conversation with history
    expect(widget.replies.nth(1)).to_contain_text("Stopped.")
    expect(widget.replies.nth(2)).to_contain_text("This reply failed.")
    expect(widget.replies.nth(2).locator(".b")).to_have_count(0)  # never an empty bubble
    expect(widget.replies.nth(3).get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )

    # New conversation: forgotten in this browser only; the transcript stays for staff.
    widget.menu("New conversation")
    expect(widget.visitor).to_have_count(0)
    expect(widget.starters).to_have_count(2)
    assert widget.session_id(chat.url) is None
    assert Session.objects.filter(public_id=session_id).exists()

    # Delete: after a confirmation, the conversation is gone from the database.
    fake.configure(reply_tokens=2)
    widget.send("Please forget me")
    expect(widget.replies.nth(1).locator(".b")).to_have_text("tok0 tok1")
    second = widget.session_id(chat.url)
    widget.menu("Delete conversation")
    widget.root.get_by_role("button", name="Cancel").click()
    assert Session.objects.filter(public_id=second).exists()
    widget.menu("Delete conversation")
    expect(widget.root.get_by_text("Delete this conversation for good?")).to_be_visible()
    widget.root.get_by_role("button", name="Delete", exact=True).click()
    expect(widget.visitor).to_have_count(0)
    assert eventually(lambda: not Session.objects.filter(public_id=second).exists())
    assert widget.session_id(chat.url) is None
    assert page.console_errors == []


def test_the_keyboard_alone_opens_chats_and_closes(widget, page, fake):
    fake.configure(reply_tokens=2)
    for _ in range(10):  # the page has nothing else to focus: the launcher comes first
        page.keyboard.press("Tab")
        if widget.focused() == "button.l":
            break
    assert widget.focused() == "button.l"
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")
    expect(widget.panel).to_be_visible()
    expect(widget.launcher).to_have_attribute("aria-expanded", "true")
    assert widget.focused() == "textarea"  # focus moves into the panel

    page.keyboard.type("First line")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("second line")
    expect(widget.input).to_have_value("First line\nsecond line")
    page.keyboard.press("Enter")
    expect(widget.visitor).to_have_text(["First line\nsecond line"])
    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1")
    assert widget.focused() == "textarea"

    # Feedback from the keyboard: back to the reply's thumbs, Space presses one.
    helpful = widget.replies.last.get_by_role("button", name="Helpful", exact=True)
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        if helpful.evaluate("b => b.matches(':focus')"):
            break
    page.keyboard.press("Space")
    expect(helpful).to_have_attribute("aria-pressed", "true")
    widget.input.focus()

    # The menu opens and closes from the keyboard; Escape closes it first, then the panel.
    menu = widget.root.get_by_role("button", name="More options")
    for _ in range(10):
        page.keyboard.press("Shift+Tab")
        if widget.focused() == "button.ib" and menu.evaluate("b => b.matches(':focus')"):
            break
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    assert (
        page.evaluate(
            "document.querySelector('chatkit-widget').shadowRoot.activeElement.textContent"
        )
        == "New conversation"
    )
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(widget.panel).to_be_visible()
    assert menu.evaluate("b => b.matches(':focus')")
    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()
    assert widget.focused() == "button.l"  # focus back on the launcher
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    assert page.console_errors == []


def test_a_spent_budget_shows_the_assistants_unavailable_message(
    widget, page, chat, default_assistant
):
    default_assistant.daily_token_budget = 1  # no reply fits: every one reserves more
    default_assistant.unavailable_message = "We're out for today: write to help@shop.example."
    default_assistant.save()

    widget.open()
    widget.send("Anyone there?")
    expect(widget.alert_text).to_have_text("We're out for today: write to help@shop.example.")
    expect(widget.input).to_have_value("Anyone there?")  # not stored: given back to edit
    session_id = widget.session_id(chat.url)
    assert not Message.objects.filter(session__public_id=session_id).exists()

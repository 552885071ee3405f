"""What the widget shows: text as text, a safe Markdown subset, history as it ended, errors.

The XSS checks run on a page with no Content-Security-Policy at all, so that markup the
widget let through would run: the widget itself must never make an element from text.
"""

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Message, Session
from tests.factories import messages_add
from tests.widget.conftest import eventually
from tests.widget.host import embed
from tests.widget.widget import Widget

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("default_assistant")]

PAYLOAD = (
    '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> '
    '[click](javascript:window.pwned=3) <a href="javascript:window.pwned=4">x</a> '
    '<svg onload="window.pwned=5"> **<b>bold</b>** <iframe src="javascript:window.pwned=6">'
    "</iframe> `<b>code</b>` <style>*{display:none}</style> [data](data:text/html,x) <div"
)

MARKDOWN = """Here is **bold**, *italic*, `code` and a [link](https://example.com/docs).

- one
- two

1. first
2. second

```python
print("<hi>")
```
Mail [us](mailto:help@example.com) or see https://example.com/faq."""


@pytest.fixture
def site(host_site, chat):
    return host_site.page("/plain", embed(chat.url))  # no CSP: nothing else would stop a script


@pytest.fixture
def widget(page, site):
    page.goto(site)
    return Widget(page).ready()


def restore(page, chat, session: Session) -> Widget:
    """Reload the page as a returning visitor whose browser holds this conversation."""
    page.evaluate(
        "([key, id]) => localStorage.setItem(key, id)",
        [f"chatkit:{chat.url}:{session.assistant.slug}", session.public_id],
    )
    page.reload()
    return Widget(page).ready().open()


def test_markup_from_the_visitor_and_the_model_stays_text(widget, page, fake):
    fake.configure(reply=PAYLOAD)
    widget.open()
    widget.send(PAYLOAD)

    expect(widget.replies.last.locator(".fb")).to_be_visible()  # the reply is complete
    expect(widget.visitor.locator(".b")).to_have_text([PAYLOAD])  # as typed
    reply = widget.replies.last.locator(".b")
    expect(reply).to_contain_text("<script>window.pwned=1</script>")
    expect(reply).to_contain_text("[click](javascript:window.pwned=3)")
    dangerous = "script, img, svg, iframe, style, a, b, [onerror], [onload], [href^='javascript']"
    assert widget.root.locator(f".b :is({dangerous})").count() == 0
    assert reply.locator("strong").inner_text() == "<b>bold</b>"
    assert reply.locator("code").inner_text() == "<b>code</b>"
    assert page.evaluate("window.pwned") is None
    assert page.console_errors == []


def test_replies_render_a_safe_markdown_subset(widget, fake):
    fake.configure(reply=MARKDOWN)
    widget.open()
    widget.send("Show me formatting")
    reply = widget.replies.last.locator(".b")
    expect(widget.replies.last.locator(".fb")).to_be_visible()

    assert reply.locator("strong").all_inner_texts() == ["bold"]
    assert reply.locator("em").all_inner_texts() == ["italic"]
    assert reply.locator("p code").all_inner_texts() == ["code"]
    assert reply.locator("ul > li").all_inner_texts() == ["one", "two"]
    assert reply.locator("ol > li").all_inner_texts() == ["first", "second"]
    assert reply.locator("pre > code").inner_text() == 'print("<hi>")'
    links = reply.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "https://example.com/docs",
        "mailto:help@example.com",
        "https://example.com/faq",
    ]
    for i in range(links.count()):
        assert links.nth(i).get_attribute("target") == "_blank"
        assert links.nth(i).get_attribute("rel") == "noopener noreferrer"


def test_each_message_lays_out_in_its_own_direction(widget, fake):
    fake.configure(reply="مرحبا! كيف يمكنني مساعدتك؟")
    widget.open()
    widget.send("Hello, in English")
    expect(widget.replies.last.locator(".fb")).to_be_visible()

    direction = "el => [el.getAttribute('dir'), getComputedStyle(el).direction]"
    assert widget.visitor.last.evaluate(direction) == ["auto", "ltr"]
    assert widget.replies.last.evaluate(direction) == ["auto", "rtl"]


def test_a_failed_reply_shows_its_failure_and_a_retry_never_an_empty_bubble(
    widget, page, chat, fake, default_assistant
):
    session = Session.objects.create(assistant=default_assistant)
    Message.objects.create(session=session, seq=1, role="user", content="Is it open?")
    Message.objects.create(session=session, seq=2, role="assistant", status="error")
    fake.configure(reply_tokens=2)

    widget = restore(page, chat, session)
    failed = widget.replies.last
    expect(failed).to_contain_text("This reply failed.")
    expect(failed.locator(".b")).to_have_count(0)
    failed.get_by_role("button", name="Retry").click()

    expect(widget.visitor).to_have_text(["Is it open?", "Is it open?"])
    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1")
    eventually(lambda: Message.objects.get(session=session, seq=4).status == "complete")


def test_a_reply_the_model_refused_offers_no_retry(widget, fake):
    fake.configure(fault="status", fault_status=400)  # the provider rejects the request
    widget.open()
    widget.send("Something the model refuses")
    expect(widget.replies.last).to_contain_text("The assistant could not answer.")
    expect(widget.replies.last).to_have_class("m a f")
    expect(widget.replies.last.get_by_role("button", name="Retry")).to_have_count(0)


def test_a_reply_still_being_written_shows_in_progress_until_it_ends(
    widget, page, chat, default_assistant
):
    session = Session.objects.create(assistant=default_assistant)
    Message.objects.create(session=session, seq=1, role="user", content="Long answer please")
    reply = Message.objects.create(session=session, seq=2, role="assistant", status="streaming")

    widget = restore(page, chat, session)
    expect(widget.replies.last).to_contain_text("Writing a reply…")

    # Another process finishes it: the widget reads it again (after 1, 3, 7, 15… s) and
    # shows it; the wait covers two of those reads.
    reply.content, reply.status = "Here it is, **complete**.", "complete"
    reply.save()
    expect(widget.replies.last.locator(".b strong")).to_have_text("complete", timeout=20_000)
    expect(widget.replies.last).not_to_contain_text("Writing a reply…")
    assert page.console_errors == []


def test_a_reply_still_written_after_a_minute_stops_spinning(page, site, chat, default_assistant):
    session = Session.objects.create(assistant=default_assistant)
    Message.objects.create(session=session, seq=1, role="user", content="Long answer please")
    Message.objects.create(session=session, seq=2, role="assistant", status="streaming")
    page.clock.install()  # the widget's timers run on the test's clock
    page.goto(site)
    widget = restore(page, chat, session)
    expect(widget.replies.last).to_contain_text("Writing a reply…")

    for _ in range(6):  # the reads after 1, 2, 4, 8, 16 and 29 more seconds: a minute
        with page.expect_response(lambda r: f"/sessions/{session.public_id}" in r.url):
            page.clock.fast_forward(30_000)
    last = widget.replies.last
    expect(last).to_contain_text("A reply is still being written. Try again shortly.")
    expect(last).not_to_contain_text("Writing a reply…")  # no typing dots any more
    expect(last.get_by_role("button", name="Retry")).to_have_count(0)


def test_a_conversation_deleted_while_open_is_replaced_not_mixed(
    widget, page, chat, fake, default_assistant
):
    session = Session.objects.create(assistant=default_assistant)
    messages_add(session, 60)
    widget = restore(page, chat, session)
    expect(widget.messages).to_have_count(50)
    session.delete()  # purged, or deleted from another tab
    fake.configure(reply_tokens=2)

    widget.send("Hello again")
    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1")
    expect(widget.messages).to_have_count(2)  # the new conversation only
    expect(widget.root.get_by_role("button", name="Show earlier messages")).to_be_hidden()
    assert widget.session_id(chat.url) != session.public_id


def test_older_messages_load_on_request_and_on_scroll(widget, page, chat, default_assistant):
    session = Session.objects.create(assistant=default_assistant)
    messages_add(session, 120)

    widget = restore(page, chat, session)
    expect(widget.messages).to_have_count(50)
    expect(widget.messages.last).to_contain_text("message 120")
    # A click where the list stands (a real click first scrolls the button into view, at the
    # top of the list, which loads a page on its own, racing the click's).
    widget.root.get_by_role("button", name="Show earlier messages").dispatch_event("click")
    expect(widget.messages).to_have_count(100)
    widget.root.locator(".lg").evaluate("el => el.scrollTo(0, 0)")
    expect(widget.messages).to_have_count(120)
    expect(widget.messages.first).to_have_text("message 1")
    expect(widget.root.get_by_role("button", name="Show earlier messages")).to_be_hidden()


def test_a_conversation_deleted_elsewhere_starts_afresh(widget, page, chat, default_assistant):
    session = Session.objects.create(assistant=default_assistant)
    messages_add(session, 2)
    key = f"chatkit:{chat.url}:default"
    page.evaluate("([k, id]) => localStorage.setItem(k, id)", [key, session.public_id])
    session.delete()

    page.reload()
    widget = Widget(page).ready().open()
    expect(widget.input).to_be_editable()
    expect(widget.visitor).to_have_count(0)
    assert eventually(lambda: page.evaluate(f"localStorage.getItem('{key}')") is None)
    assert widget.alert.is_hidden()
    widget.root.get_by_role("button", name="More options").click()
    expect(widget.root.get_by_role("button", name="Delete conversation")).to_be_disabled()
    expect(widget.root.get_by_role("button", name="Download conversation")).to_be_disabled()


def test_the_visitor_can_download_the_whole_conversation(widget, page, chat, default_assistant):
    session = Session.objects.create(assistant=default_assistant)
    messages_add(session, 60)
    widget = restore(page, chat, session)
    expect(widget.messages).to_have_count(50)

    with page.expect_download() as download:
        widget.menu("Download conversation")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename == "conversation.txt"
    assert "You:\nmessage 1\n" in text and "Assistant:\nmessage 60\n" in text
    assert text.count("You:\n") == 30 and text.count("Assistant:\n") == 30


def test_errors_are_explained_and_the_visitors_text_kept(widget, page, chat, default_assistant):
    widget.open()
    expect(widget.notice).to_have_text(
        "You are chatting with an AI assistant. Conversations are kept for 30 days."
    )

    # An origin the assistant does not allow: 403 before anything is stored.
    default_assistant.allowed_origins = ["https://elsewhere.example"]
    default_assistant.save()
    widget.send("Hello?")
    expect(widget.alert_text).to_have_text("This chat is not available here.")
    expect(widget.input).to_have_value("Hello?")
    expect(widget.visitor).to_have_count(0)
    default_assistant.allowed_origins = []
    default_assistant.save()

    # A reply still being written (another tab): 409, and the text stays in the box.
    session = Session.objects.create(assistant=default_assistant)
    Message.objects.create(session=session, seq=1, role="user", content="First")
    Message.objects.create(
        session=session, seq=2, role="assistant", status="streaming", created_at=timezone.now()
    )
    widget = restore(page, chat, session)
    widget.send("Second")
    expect(widget.alert_text).to_have_text("A reply is still being written. Try again shortly.")
    expect(widget.input).to_have_value("Second")

    # No network: said so, and the text stays too.
    Message.objects.filter(session=session, seq=2).update(status="complete", content="Done")
    page.context.set_offline(True)
    widget.input.press("Enter")
    expect(widget.alert_text).to_have_text("No connection. Check your network and try again.")
    expect(widget.input).to_have_value("Second")
    page.context.set_offline(False)
    widget.input.press("Enter")
    expect(widget.visitor.last).to_have_text("Second")
    expect(widget.alert).to_be_hidden()
    # Its reply is stored before the test's database is emptied under the server.
    eventually(lambda: not Message.objects.filter(session=session, status="streaming").exists())


def test_the_counter_appears_near_the_limit_and_blocks_going_over(widget):
    widget.open()
    expect(widget.input).to_be_editable()
    widget.input.fill("x" * 850)
    counter = widget.root.locator(".ct")
    expect(counter).to_have_text("850 / 1000")
    expect(widget.send_button).to_be_enabled()
    widget.input.fill("x" * 1001)
    expect(counter).to_have_text("1001 / 1000")
    expect(widget.send_button).to_be_disabled()
    widget.input.press("Enter")
    expect(widget.visitor).to_have_count(0)
    widget.input.fill("x" * 10)
    expect(counter).to_be_hidden()


def test_an_unknown_assistant_says_so(page, host_site, chat):
    url = host_site.page("/nope", embed(chat.url).replace('"default"', '"no-such-assistant"'))
    page.goto(url)
    widget = Widget(page).ready().open()
    expect(widget.alert_text).to_contain_text("This chat is not available here.")

"""The widget on customers' pages: isolated from hostile CSS, cheap on page views, scriptable.

Every page here is on another origin than the chat host, and most send a strict
Content-Security-Policy (no 'unsafe-inline', no 'unsafe-eval'); no test bypasses it.
"""

import pytest
from playwright.sync_api import expect

from tests.widget.conftest import eventually
from tests.widget.host import embed, strict_csp
from tests.widget.widget import Widget

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("default_assistant")]

HOSTILE_CSS = """
* { all: unset !important; }
html, body, p, span, li, ol, textarea { color: red !important; font-size: 40px !important;
  line-height: 7 !important; letter-spacing: 9px !important; width: 3px !important;
  text-transform: uppercase !important; visibility: visible !important; }
div { display: none !important; }
button { background: lime !important; width: 2px !important; height: 2px !important;
  border-radius: 0 !important; }
.l, .p, .b, .m, .w { border: 9px solid orange !important; }
.cookie-banner { display: block !important; position: fixed !important; left: 0 !important;
  right: 0 !important; bottom: 0 !important; height: 140px !important; width: auto !important;
  background: #222 !important; z-index: 999999 !important; }
#under { display: block !important; position: fixed !important; right: 40px !important;
  bottom: 260px !important; width: 160px !important; height: 80px !important; }
#probe { display: block !important; border-radius: 0 !important; }
"""


@pytest.fixture
def hostile(host_site, chat):
    host_site.file("/hostile.css", HOSTILE_CSS, "text/css")
    body = (
        '<aside class="cookie-banner">We use cookies.</aside>'
        '<button id="under">Under the panel</button>'
        '<span id="probe" class="l b m p w">probe</span>'
    )
    head = '<link rel="stylesheet" href="/hostile.css">'
    return host_site.page(
        "/hostile", embed(chat.url, head=head, body=body), csp=strict_csp(chat.url)
    )


def test_a_hostile_page_under_a_strict_csp_neither_breaks_nor_is_broken(page, hostile, fake):
    fake.configure(reply_tokens=3)
    page.goto(hostile)
    widget = Widget(page).ready()

    # Closed, the widget is its launcher and nothing more: the page's button stays clickable.
    expect(widget.launcher).to_be_visible()
    box = widget.launcher.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (56, 56)  # the page's sizes stay out
    page.locator("#under").click(timeout=2000)
    under = page.locator("#under").bounding_box()
    x, y = under["x"] + under["width"] / 2, under["y"] + under["height"] / 2
    assert page.evaluate(f"document.elementFromPoint({x}, {y}).id") == "under"

    # Above the page's cookie banner (z-index 999999): clickable where the banner lies.
    banner = page.locator(".cookie-banner").bounding_box()
    assert box["y"] > banner["y"]  # the launcher sits inside the banner's area
    widget.launcher.click(timeout=2000)  # Playwright refuses a click another element takes
    expect(widget.panel).to_be_visible()
    panel = widget.panel.bounding_box()
    assert panel["width"] == 380 and panel["height"] > 300

    # The page's CSS does not reach in.
    styles = widget.input.evaluate(
        "el => { const s = getComputedStyle(el); return [s.fontSize, s.color, s.letterSpacing]; }"
    )
    assert styles == ["16px", "rgb(31, 35, 40)", "normal"]
    widget.send("Hello from a hostile page")
    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1 tok2")
    bubble = widget.replies.last.locator(".b").evaluate(
        """el => { const s = getComputedStyle(el);
                   return [s.borderTopWidth, s.display, s.letterSpacing, s.textTransform]; }"""
    )
    assert bubble == ["0px", "block", "normal", "none"]  # nothing inherited from the page

    # The widget's CSS does not leak out: the page's own .l/.b/.m/.p/.w element is untouched.
    probe = page.locator("#probe").evaluate(
        "el => [getComputedStyle(el).borderTopWidth, getComputedStyle(el).borderRadius]"
    )
    assert probe == ["9px", "0px"]
    assert page.console_errors == []  # no CSP violation, nothing blocked


def test_a_page_view_makes_no_api_request_until_the_panel_opens(page, host_site, chat):
    url = host_site.page("/views", embed(chat.url), csp=strict_csp(chat.url))
    api_calls: list[str] = []
    page.on(
        "request", lambda r: api_calls.append(r.method + " " + r.url) if "/api/" in r.url else None
    )

    page.goto(url)
    widget = Widget(page).ready()
    expect(widget.launcher).to_be_visible()
    page.wait_for_load_state("networkidle")  # whatever the widget would fetch, it has
    page.reload()
    expect(widget.launcher).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert api_calls == []

    widget.open()
    expect(widget.title).to_have_text("Assistant")
    assert api_calls == [f"GET {chat.url}/api/v1/assistants/default"]  # no session yet

    widget.send("Hi")
    expect(widget.replies.last.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
    assert [call.split("/api/v1")[1] for call in api_calls[1:3]] == [
        "/sessions",
        f"/sessions/{widget.session_id(chat.url)}/messages",
    ]

    # Closed on this page: the next page view costs nothing again, the conversation stays.
    widget.root.get_by_role("button", name="Close chat").first.click()
    api_calls.clear()
    page.reload()
    expect(widget.launcher).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert api_calls == []
    widget.open()
    expect(widget.visitor).to_have_text(["Hi"])


def test_the_host_page_drives_the_widget_through_the_queue_the_api_and_events(
    page, host_site, chat, fake
):
    fake.configure(reply_tokens=2)
    # The page's own script (a file: the CSP allows no inline script) runs before the widget.
    host_site.file(
        "/host.js",
        """
        window.seen = [];
        window.chatkitQueue = window.chatkitQueue || [];
        chatkitQueue.push(["on", "message", (m) => seen.push(m.role + ":" + m.status)]);
        chatkitQueue.push(["on", "open", () => seen.push("open")]);
        chatkitQueue.push(["open"], ["send", "Hello from the queue"], ["send", "And again"]);
        window.addEventListener("chatkit:ready", () => seen.push("ready"));
        window.addEventListener("chatkit:close", () => seen.push("closed"));
        """,
        "text/javascript",
    )
    url = host_site.page(
        "/scripted",
        embed(chat.url, head='<script src="/host.js"></script>'),
        csp=strict_csp(chat.url),
    )
    page.goto(url)
    widget = Widget(page).ready()

    expect(widget.panel).to_be_visible()
    # Both queued messages are sent, one after the other.
    expect(widget.visitor).to_have_text(["Hello from the queue", "And again"])
    expect(widget.replies.locator(".b")).to_have_text(["tok0 tok1", "tok0 tok1"])
    seen = eventually(lambda: (s := page.evaluate("seen")) and len(s) == 6 and s)
    assert seen == ["open", "ready"] + ["user:complete", "assistant:complete"] * 2

    # A message sent through the API while the visitor's own reply is written waits for it.
    fake.configure(reply_tokens=2, hold_after=1)
    widget.send("Mine first")
    expect(widget.replies.last.locator(".b")).to_have_text("tok0")
    page.evaluate("() => { window.sent = ChatKit.send('Then the page'); }")
    fake.release()
    assert page.evaluate("window.sent") is True
    expect(widget.visitor).to_have_text(
        ["Hello from the queue", "And again", "Mine first", "Then the page"]
    )

    # After loading, the queue still works, and so does the API it stands for.
    page.evaluate("chatkitQueue.push(['close'])")
    expect(widget.panel).to_be_hidden()
    page.evaluate("ChatKit.toggle()")
    expect(widget.panel).to_be_visible()
    page.evaluate("ChatKit.reset()")
    expect(widget.visitor).to_have_count(0)
    assert widget.session_id(chat.url) is None
    page.evaluate("ChatKit.close()")
    assert page.evaluate("seen.filter((e) => e === 'closed').length") == 2
    assert page.console_errors == []


def test_keys_typed_in_the_chat_do_not_reach_the_pages_shortcuts(page, host_site, chat):
    host_site.file(
        "/keys.js",
        "window.keys = []; document.addEventListener('keydown', (e) => keys.push(e.key));",
        "text/javascript",
    )
    url = host_site.page(
        "/keys", embed(chat.url, head='<script src="/keys.js"></script>'), csp=strict_csp(chat.url)
    )
    page.goto(url)
    widget = Widget(page).ready().open()
    widget.input.press_sequentially("/?a")
    widget.input.press("Escape")  # closes the chat, not the page's own dialogs
    expect(widget.panel).to_be_hidden()
    assert page.evaluate("keys") == []
    page.mouse.click(5, 5)  # the focus leaves the widget (it was on the launcher)
    page.keyboard.press("x")  # outside the widget, the page hears its keys as before
    assert page.evaluate("keys") == ["x"]


def test_the_snippet_pasted_twice_makes_one_widget(page, host_site, chat):
    snippet = f'<script src="{chat.url}/static/widget/chatkit.js" data-assistant="default" async>'
    twice = embed(chat.url, body=snippet + "</script>")
    page.goto(host_site.page("/twice", twice, csp=strict_csp(chat.url)))
    Widget(page).ready()
    expect(page.locator("chatkit-widget")).to_have_count(1)
    assert page.console_errors == []


def test_an_invalid_accent_colour_keeps_the_assistants(page, host_site, chat, default_assistant):
    default_assistant.accent_color = "#7a3e12"
    default_assistant.save()
    url = host_site.page(
        "/red", embed(chat.url, attrs='data-accent-color="red" data-open'), csp=strict_csp(chat.url)
    )
    page.goto(url)
    widget = Widget(page).ready()
    header = widget.root.locator("header")
    expect(header).to_have_css("background-color", "rgb(122, 62, 18)")


def test_the_options_place_title_and_colour_the_widget(page, host_site, chat):
    attrs = 'data-position="left" data-title="Ask Northwind" data-accent-color="#ffd400" data-open'
    url = host_site.page("/options", embed(chat.url, attrs=attrs), csp=strict_csp(chat.url))
    page.goto(url)
    widget = Widget(page).ready()

    expect(widget.panel).to_be_visible()  # data-open
    expect(widget.title).to_have_text("Ask Northwind")  # data-title over the assistant's name
    assert widget.launcher.bounding_box()["x"] < 40  # data-position="left"
    assert widget.panel.bounding_box()["x"] < 40
    header = widget.root.locator("header").evaluate(
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]"
    )
    # A light accent gets dark text on it, for contrast.
    assert header == ["rgb(255, 212, 0)", "rgb(17, 17, 17)"]
    assert widget.focused() == ""  # opened by the page, not the visitor: the focus stays put

"""The widget for everyone: axe-core's checks in light and dark, screen readers, phones, RTL."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.widget.host import embed, strict_csp
from tests.widget.widget import Widget

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("default_assistant")]


@pytest.fixture
def site(host_site, chat):
    return host_site.page("/a11y", embed(chat.url), csp=strict_csp(chat.url))


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings inside the widget (its shadow root included)."""
    results = Axe().run(page, context={"include": [["chatkit-widget"]]})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious_with_the_panel_open(
    new_page, site, fake, scheme, default_assistant
):
    default_assistant.greeting = "Hi! Ask me anything."
    default_assistant.starter_prompts = ["Opening hours?", "Delivery times?"]
    default_assistant.save()
    fake.configure(reply="Sure: **open** 9 to 5, see [hours](https://example.com/hours).")
    page = new_page(color_scheme=scheme)
    page.goto(site)
    widget = Widget(page).ready().open()
    expect(widget.starters).to_have_count(2)
    assert serious_violations(page) == []

    widget.send("When are you open?")
    expect(widget.replies.last.locator(".fb")).to_be_visible()
    widget.root.get_by_role("button", name="More options").click()
    assert serious_violations(page) == []
    background = widget.panel.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")


def test_every_control_has_a_name_and_the_panel_is_a_labelled_dialog(page, site):
    page.goto(site)
    widget = Widget(page).ready()
    expect(widget.launcher).to_have_accessible_name("Open chat")
    widget.open()
    expect(widget.launcher).to_have_accessible_name("Close chat")
    expect(widget.root.get_by_role("dialog", name="Assistant")).to_be_visible()
    for button in widget.root.get_by_role("button").all():
        if button.is_visible():
            assert button.evaluate("b => b.getAttribute('aria-label') || b.textContent.trim()")
    expect(widget.input).to_have_accessible_name("Type your message…")


def test_a_reply_is_announced_once_when_complete_not_token_by_token(page, site, fake):
    fake.configure(reply_tokens=8, hold_after=2)
    page.goto(site)
    widget = Widget(page).ready().open()
    widget.send("Tell me")
    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1")
    expect(widget.live).to_have_text("")  # nothing read out while it is written
    fake.release()
    expect(widget.replies.last.locator(".fb")).to_be_visible()
    expect(widget.live).to_have_text("tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7")
    # The conversation itself is not a live region (it would read every token).
    assert widget.root.locator("[aria-live]").count() == 1
    assert widget.root.locator("[role=log]").count() == 0


def test_motion_stops_for_visitors_who_ask_for_less(new_page, site, fake):
    fake.configure(reply_tokens=2, hold_after=0)  # typing dots until the first token
    page = new_page(reduced_motion="reduce")
    page.goto(site)
    widget = Widget(page).ready().open()
    widget.send("Slowly")
    dot = widget.root.locator(".ty i").first
    expect(dot).to_be_visible()
    assert dot.evaluate("el => getComputedStyle(el).animationName") == "none"
    fake.release()
    expect(widget.replies.last.locator(".fb")).to_be_visible()


def test_on_a_phone_the_panel_is_full_screen_with_a_16px_input(new_page, site):
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(site)
    widget = Widget(page).ready()
    widget.launcher.tap()
    expect(widget.panel).to_be_visible()

    box = widget.panel.bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
    assert widget.input.evaluate("el => getComputedStyle(el).fontSize") == "16px"  # no iOS zoom
    expect(widget.launcher).to_be_hidden()  # the header's close button closes it
    # It covers the page, so it is modal: Tab goes round inside it, never to the page.
    expect(widget.panel).to_have_attribute("aria-modal", "true")
    for _ in range(12):
        page.keyboard.press("Tab")
        assert widget.focused() != ""
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        assert widget.focused() != ""
    widget.root.locator("header").get_by_role("button", name="Close chat").tap()
    expect(widget.panel).to_be_hidden()
    expect(widget.launcher).to_be_visible()


def test_arabic_lays_out_right_to_left(new_page, host_site, chat):
    url = host_site.page("/ar", embed(chat.url, attrs='data-locale="ar"'), csp=strict_csp(chat.url))
    page = new_page()
    page.goto(url)
    widget = Widget(page).ready()
    expect(widget.launcher).to_have_accessible_name("فتح المحادثة")
    widget.open()

    assert widget.panel.evaluate("el => getComputedStyle(el).direction") == "rtl"
    expect(widget.input).to_have_attribute("placeholder", "اكتب رسالتك…")
    # Right to left: the send button sits left of the message box, the title on the right.
    send = widget.root.get_by_role("button", name="إرسال")
    assert send.bounding_box()["x"] < widget.input.bounding_box()["x"]
    title, menu = widget.title.bounding_box(), widget.root.locator("header .ib").first
    assert title["x"] > menu.bounding_box()["x"]


def test_the_browser_language_picks_the_strings_and_the_page_can_override_them(
    new_page, host_site, chat
):
    host_site.file("/strings.js", "window.chatkitStrings = {send: 'Los!'};", "text/javascript")
    url = host_site.page(
        "/de", embed(chat.url, head='<script src="/strings.js"></script>'), csp=strict_csp(chat.url)
    )
    page = new_page(locale="de-DE")
    page.goto(url)
    widget = Widget(page).ready()
    expect(widget.launcher).to_have_accessible_name("Chat öffnen")
    widget.launcher.click()
    expect(widget.root.get_by_role("button", name="Los!")).to_be_visible()
    expect(widget.notice).to_contain_text("Unterhaltungen werden 30 Tage aufbewahrt.")

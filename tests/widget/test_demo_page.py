"""The demo page: a sample shop that embeds the widget with the snippet it shows."""

import html
import re

import pytest
from playwright.sync_api import expect

from tests.widget.widget import Widget

SNIPPET = re.compile(r"<pre><code>(&lt;script .*?&gt;&lt;/script&gt;)</code></pre>")


def shown_snippet(page: str) -> str:
    return html.unescape(SNIPPET.search(page).group(1))


@pytest.mark.django_db
def test_the_page_embeds_the_widget_with_the_very_snippet_it_shows(client):
    response = client.get("/", {"assistant": "support"})
    page = response.content.decode()

    snippet = shown_snippet(page)
    assert snippet == (
        '<script src="http://testserver/static/widget/chatkit.js" data-assistant="support" '
        "async></script>"
    )
    assert snippet in page  # the real tag, not only its text
    # The stable URL customers paste, not a hashed static name.
    assert client.get("/static/widget/chatkit.js").status_code == 200


@pytest.mark.django_db
def test_the_inline_mode_shows_the_inline_snippet_and_its_target(client):
    page = client.get("/", {"mode": "inline"}).content.decode()

    snippet = shown_snippet(page)
    assert 'data-mode="inline" data-target="#chat"' in snippet and snippet in page
    assert '<div id="chat" class="inline-chat"></div>' in page


@pytest.mark.django_db
def test_an_odd_assistant_parameter_becomes_a_slug(client):
    snippet = shown_snippet(client.get("/", {"assistant": '"><script>x</script>'}).content.decode())
    assert 'data-assistant="scriptxscript"' in snippet


@pytest.mark.django_db
def test_the_page_is_served_under_a_strict_content_security_policy(client):
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.fixture(scope="module")
def server(live_server_factory):
    return live_server_factory()  # demo mode: no model configured


@pytest.mark.browser
def test_a_visitor_chats_on_the_demo_page_in_labelled_demo_mode(server, default_assistant, page):
    page.goto(server.url + "/")
    widget = Widget(page).ready().open()
    expect(widget.root.get_by_text("Demo mode")).to_be_visible()
    widget.send("Hello")
    expect(widget.replies.last.locator(".b")).to_contain_text("[Demo mode]")
    assert page.console_errors == []


@pytest.mark.browser
def test_the_inline_embed_renders_inside_the_page(server, default_assistant, page):
    page.goto(server.url + "/?mode=inline")
    widget = Widget(page).ready()
    expect(widget.panel).to_be_visible()  # no bubble to open
    expect(widget.launcher).to_have_count(0)
    assert page.locator("#chat chatkit-widget").count() == 1
    chat_box = page.locator("#chat").bounding_box()
    panel_box = widget.panel.bounding_box()
    assert (
        abs(panel_box["x"] - chat_box["x"]) < 1 and abs(panel_box["width"] - chat_box["width"]) < 1
    )
    widget.send("Hi")
    expect(widget.replies.last.locator(".b")).to_contain_text("[Demo mode]")
    assert page.console_errors == []

"""Signed-in visitors in the widget: the host site's token, their conversations on any device,
and nothing of one person shown to the next on a shared computer.

The customer's page (another origin, strict CSP) passes a token its server signed with the
assistant's identity secret, as `data-user-token` or through `ChatKit.identify(getToken)`;
the chat host is the real server, which verifies it.
"""

import json
import time
from datetime import timedelta

import jwt
import pytest
from playwright.sync_api import expect

from conversations.models import Assistant, Session
from tests.factories import conversation, reply, visitor
from tests.widget.conftest import eventually
from tests.widget.host import embed, strict_csp
from tests.widget.test_accessibility import serious_violations
from tests.widget.widget import Widget

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("signed")]

SECRET = "k" * 43  # as long as the secrets the admin generates


@pytest.fixture
def signed(default_assistant):
    """The `default` assistant, with signed-in visitors on (`optional`)."""
    default_assistant.identity_mode = Assistant.IdentityMode.OPTIONAL
    default_assistant.identity_secret = SECRET
    default_assistant.save()
    return default_assistant


def token(sub: str, *, lifetime: int = 600) -> str:
    """What the host site's server hands its page for a signed-in user."""
    now = int(time.time())
    claims = {"sub": sub, "aud": "default", "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def expired(sub: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "aud": "default", "iat": now - 900, "exp": now - 300}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def signed_in_page(host_site, chat, path: str, user_token: str = "") -> str:
    """A page of the customer's site; signed in (`data-user-token`) when given a token."""
    attrs = f'data-user-token="{user_token}"' if user_token else ""
    return host_site.page(path, embed(chat.url, attrs=attrs), csp=strict_csp(chat.url))


def get_token_page(host_site, chat, path: str, first_token: str) -> str:
    """A page that signs its user in with a function: it hands out `window.nextToken` (a
    test changes it) and counts its calls. A script file of the site's own: the CSP allows
    no inline script."""
    host_site.file(
        path + ".js",
        f"window.nextToken = {json.dumps(first_token)}; window.tokenCalls = 0;"
        "(window.chatkitQueue = window.chatkitQueue || []).push(['identify', () => {"
        " window.tokenCalls++; return Promise.resolve(window.nextToken); }]);",
        "text/javascript",
    )
    head = f'<script src="{path}.js"></script>'
    return host_site.page(path, embed(chat.url, head=head), csp=strict_csp(chat.url))


def requests(page, chat) -> list[tuple[str, str, str]]:
    """Method, path and Authorization header of each v1 call the page makes, from now on."""
    seen: list[tuple[str, str, str]] = []
    api = chat.url + "/api/v1"

    def record(request):
        if request.url.startswith(api) and request.method != "OPTIONS":
            path = request.url.removeprefix(api)
            seen.append((request.method, path, request.headers.get("authorization", "")))

    page.on("request", record)
    return seen


def conversation_list(widget: Widget):
    return widget.root.locator(".st button")


def test_a_visitor_signed_in_by_the_page_sends_their_token_and_owns_the_conversation(
    page, host_site, chat, fake
):
    fake.configure(reply_tokens=2)
    alice = token("alice")
    page.goto(signed_in_page(host_site, chat, "/account", alice))
    sent = requests(page, chat)
    widget = Widget(page).ready().open()
    widget.send("Where is my order?")

    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1")
    session_id = widget.session_id(chat.url)
    assert Session.objects.get(public_id=session_id).visitor_sub == "alice"
    # Every v1 call, the config's too.
    assert [(method, path) for method, path, _ in sent] == [
        ("GET", "/assistants/default"),
        ("POST", "/sessions"),
        ("POST", f"/sessions/{session_id}/messages"),
    ]
    assert {authorization for *_, authorization in sent} == {f"Bearer {alice}"}
    assert page.console_errors == []


def test_get_token_is_asked_again_after_token_expired_and_the_request_succeeds(
    page, host_site, chat, fake
):
    fake.configure(reply_tokens=2)
    stale, fresh = expired("alice"), token("alice")
    # The token the page's function had has run out (the config does not need one).
    page.goto(get_token_page(host_site, chat, "/app", stale))
    widget = Widget(page).ready().open()
    expect(widget.title).to_have_text("Assistant")  # loaded, with the stale token in hand
    calls = page.evaluate("window.tokenCalls")
    assert calls >= 1
    page.evaluate(f"window.nextToken = {json.dumps(fresh)}")
    sent = requests(page, chat)
    widget.send("Hello again")

    expect(widget.replies.last.locator(".b")).to_have_text("tok0 tok1")
    expect(widget.alert).to_be_hidden()
    assert page.evaluate("window.tokenCalls") == calls + 1  # once, after the 401
    session_id = widget.session_id(chat.url)
    assert sent == [
        ("POST", "/sessions", f"Bearer {stale}"),  # refused: token_expired
        ("POST", "/sessions", f"Bearer {fresh}"),
        ("POST", f"/sessions/{session_id}/messages", f"Bearer {fresh}"),
    ]
    assert Session.objects.get(public_id=session_id).visitor_sub == "alice"


def test_a_token_refused_again_says_sign_in_once_and_does_not_loop(page, host_site, chat):
    page.goto(signed_in_page(host_site, chat, "/stale", expired("alice")))
    widget = Widget(page).ready().open()
    expect(widget.title).to_have_text("Assistant")
    sent = requests(page, chat)
    widget.send("Hi")

    expect(widget.alert_text).to_have_text("Please sign in.")
    expect(widget.input).to_have_value("Hi")
    # The refused request and one retry (a token written in the page cannot be renewed).
    assert [(method, path) for method, path, _ in sent] == [("POST", "/sessions")] * 2
    assert not Session.objects.exists()


def test_required_mode_asks_an_anonymous_visitor_to_sign_in(page, host_site, chat, signed):
    signed.identity_mode = Assistant.IdentityMode.REQUIRED
    signed.save()
    page.goto(signed_in_page(host_site, chat, "/public"))
    widget = Widget(page).ready().open()
    widget.send("Hi")

    expect(widget.alert_text).to_have_text("Please sign in.")
    assert not Session.objects.exists()


def test_the_list_shows_the_visitors_conversations_and_opens_one(page, host_site, chat, signed):
    older = conversation(
        signed, visitor("Do you ship abroad?"), reply("To 40 countries."),
        title="Do you ship abroad?", visitor_sub="alice", idle=timedelta(hours=2),
    )  # fmt: skip
    conversation(
        signed, visitor("<b>Refund</b> please"), reply("Done."),
        title="<b>Refund</b> please", visitor_sub="alice", idle=timedelta(minutes=1),
    )  # fmt: skip
    conversation(signed, visitor("Bob's"), title="Bob's question", visitor_sub="bob")
    conversation(signed, visitor("Anonymous"), title="Someone anonymous")
    page.goto(signed_in_page(host_site, chat, "/orders", token("alice")))
    widget = Widget(page).ready().open()
    widget.menu("Your conversations")

    # Theirs only, newest activity first, titles as text (never markup); the first has focus.
    expect(conversation_list(widget)).to_have_text(["<b>Refund</b> please", "Do you ship abroad?"])
    expect(widget.root.locator(".st b")).to_have_count(0)
    assert widget.focused() == "button"
    assert serious_violations(page) == []

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(widget.messages).to_have_text(["Do you ship abroad?", "To 40 countries."])
    expect(widget.root.locator(".st")).to_be_hidden()
    assert widget.session_id(chat.url) == older.public_id
    assert widget.focused() == "textarea"


def test_the_list_is_offered_to_signed_in_visitors_only(page, host_site, chat):
    page.goto(signed_in_page(host_site, chat, "/guest"))
    widget = Widget(page).ready().open()
    expect(widget.title).to_have_text("Assistant")
    widget.root.get_by_role("button", name="More options").click()

    expect(widget.root.locator(".mn button:visible")).to_have_text(
        ["New conversation", "Download conversation", "Delete conversation"]
    )


def test_the_next_person_on_the_same_browser_sees_nothing_of_the_first(page, host_site, chat, fake):
    fake.configure(reply="Your order ships Monday.")
    page.goto(signed_in_page(host_site, chat, "/a", token("alice")))
    widget = Widget(page).ready().open()
    widget.send("My address is 1 Elm St")
    expect(widget.replies.last.locator(".b")).to_have_text("Your order ships Monday.")
    alices = widget.session_id(chat.url)

    # Alice signs out; Bob signs in on the same browser (same storage, panel still open).
    sent = requests(page, chat)
    page.goto(signed_in_page(host_site, chat, "/b", token("bob")))
    widget = Widget(page).ready().open()
    widget.send("Hi, I am Bob")
    expect(widget.replies.last.locator(".b")).to_have_text("Your order ships Monday.")

    expect(widget.visitor).to_have_text(["Hi, I am Bob"])
    bobs = widget.session_id(chat.url)
    assert Session.objects.get(public_id=bobs).visitor_sub == "bob"
    # Alice's conversation was not even asked for: forgotten as Bob's token came.
    assert not [path for _, path, _ in sent if alices in path]


def test_signing_out_forgets_the_conversation_shown(page, host_site, chat, fake):
    fake.configure(reply="Noted.")
    page.goto(signed_in_page(host_site, chat, "/c", token("alice")))
    widget = Widget(page).ready().open()
    widget.send("My card ends in 4242")
    expect(widget.replies.last.locator(".b")).to_have_text("Noted.")

    page.evaluate("window.chatkitQueue.push(['identify', null])")

    expect(widget.visitor).to_have_count(0)
    assert widget.session_id(chat.url) is None


def test_an_anonymous_conversation_stays_when_the_visitor_signs_in(page, host_site, chat, fake):
    fake.configure(reply="Hello.")
    page.goto(signed_in_page(host_site, chat, "/d"))
    widget = Widget(page).ready().open()
    widget.send("Before signing in")
    expect(widget.replies.last.locator(".b")).to_have_text("Hello.")
    anonymous = widget.session_id(chat.url)

    page.goto(signed_in_page(host_site, chat, "/e", token("alice")))
    widget = Widget(page).ready().open()
    expect(widget.visitor).to_have_text(["Before signing in"])
    assert widget.session_id(chat.url) == anonymous
    assert Session.objects.get(public_id=anonymous).visitor_sub == ""

    # The next conversation is theirs.
    widget.menu("New conversation")
    widget.send("After signing in")
    expect(widget.replies.last.locator(".b")).to_have_text("Hello.")
    mine = eventually(lambda: (sid := widget.session_id(chat.url)) != anonymous and sid)
    assert Session.objects.get(public_id=mine).visitor_sub == "alice"

"""The conversation admin as staff see it: the list, its numbers, filters and search, and a
conversation's page (a read-only transcript where text is never markup and ids never shown)."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone

from conversations.models import Message
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS as LIST
from tests.helpers import admin_page_of

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def rows(page) -> list[dict[str, str]]:
    """The list's rows, each as {column: text shown}."""
    assert page.status_code == 200
    content = page.content.decode()
    if 'id="result_list"' not in content:
        return []
    body = content.split('id="result_list"', 1)[1].split("</table>", 1)[0]
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        cells = re.findall(r'<t[dh] class="field-(\w+)[^"]*">(.*?)</t[dh]>', row, re.S)
        found.append({name: html.unescape(re.sub(r"<[^>]+>", "", text)) for name, text in cells})
    return found


def titles(page) -> list[str]:
    return [row["title"] for row in rows(page)]


# --- The list ------------------------------------------------------------------------------


def test_the_list_shows_each_conversations_numbers(admin_client, assistant):
    conversation(
        assistant,
        visitor("Where is my order?"),
        reply("Let me check.", prompt_tokens=10, completion_tokens=5, feedback_rating="up"),
        visitor("Still waiting"),
        reply(
            "",
            status="error",
            error_code="upstream_error",
            prompt_tokens=7,
            feedback_rating="down",
            feedback_comment="Useless",
        ),
        title="Where is my order?",
        origin="https://shop.example",
    )
    conversation(assistant, title="Empty one")

    shown = {row["title"]: row for row in rows(admin_client.get(LIST))}

    order = shown["Where is my order?"]
    assert order["assistant"] == assistant.name
    assert order["origin"] == "https://shop.example"
    assert (order["message_count"], order["total_tokens"], order["error_count"]) == (
        "4",
        "22",
        "1",
    )
    assert order["feedback"] == "1 / 1"
    empty = shown["Empty one"]
    assert (empty["message_count"], empty["total_tokens"], empty["error_count"]) == ("0", "0", "0")
    assert empty["feedback"] == "-"


@pytest.mark.parametrize("count", [1, 30])
def test_the_list_runs_a_fixed_number_of_queries(
    admin_client, assistant, count, django_assert_max_num_queries
):
    for n in range(count):
        conversation(
            assistant,
            visitor(f"question {n}"),
            reply("answer", prompt_tokens=3, completion_tokens=4, feedback_rating="up"),
            reply("oops", status="error"),
            title=f"Question {n}",
        )
    # Login session and user; assistants for the filter; the filtered and the full count; the
    # page; the page's numbers; the date hierarchy's range and its dates; whether any
    # assistant signs visitors in (the visitor's column).
    with django_assert_max_num_queries(10):
        page = admin_client.get(LIST)
    assert len(rows(page)) == count
    assert {row["message_count"] for row in rows(page)} == {"3"}


def test_the_list_is_newest_first(admin_client, assistant):
    now = timezone.now()
    for title, days_ago in [("middle", 2), ("newest", 1), ("oldest", 3)]:
        conversation(assistant, visitor(title), title=title, at=now - timedelta(days=days_ago))
    assert titles(admin_client.get(LIST)) == ["newest", "middle", "oldest"]


def test_the_list_sorts_by_a_number_on_request(admin_client, assistant):
    conversation(assistant, visitor("a"), title="one message")
    conversation(assistant, visitor("a"), reply("b"), visitor("c"), title="three messages")
    conversation(assistant, title="no message")
    # Column 5 is the number of messages; "-" sorts descending.
    assert titles(admin_client.get(LIST, {"o": "-5"})) == [
        "three messages",
        "one message",
        "no message",
    ]


def test_search_finds_message_text_and_keeps_the_numbers_right(admin_client, assistant):
    conversation(
        assistant,
        visitor("I want a REFUND"),
        reply("Refunds take 5 days.", prompt_tokens=1, completion_tokens=2),
        title="Money back",
    )
    conversation(assistant, visitor("Opening hours?"), title="Hours")

    found = rows(admin_client.get(LIST, {"q": "refund"}))

    # Listed once although two of its messages match, with all of its messages counted.
    assert [(r["title"], r["message_count"], r["total_tokens"]) for r in found] == [
        ("Money back", "2", "3")
    ]


def test_search_finds_titles_and_needs_every_word(admin_client, assistant):
    conversation(assistant, visitor("about shipping"), title="Shipping to Norway")
    conversation(assistant, visitor("about shipping"), title="Shipping to Spain")
    assert titles(admin_client.get(LIST, {"q": "norway"})) == ["Shipping to Norway"]
    assert titles(admin_client.get(LIST, {"q": "shipping spain"})) == ["Shipping to Spain"]
    assert titles(admin_client.get(LIST, {"q": '"to spain"'})) == ["Shipping to Spain"]


def test_the_session_id_is_never_shown_but_can_be_searched(admin_client, session):
    session.title = "Order question"
    session.save()
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    listing = admin_client.get(LIST).content.decode()
    assert "Order question" in listing
    assert session.public_id not in listing
    for path in [
        admin_page_of(session),
        *(f"{LIST}{session.pk}/{view}/" for view in ["history", "delete"]),
    ]:
        shown = admin_client.get(path)
        assert shown.status_code == 200
        assert session.public_id not in shown.content.decode()

    # An exact match only (ids are case-sensitive; the unique index serves it): no listing
    # of ids by prefix. The search box shows the id back to who typed it, and nothing else.
    assert titles(admin_client.get(LIST, {"q": session.public_id})) == ["Order question"]
    assert titles(admin_client.get(LIST, {"q": session.public_id.swapcase()})) == []
    assert titles(admin_client.get(LIST, {"q": session.public_id[:8]})) == []


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ({"has_error": "yes"}, ["failed"]),
        ({"has_error": "no"}, ["liked", "disliked", "quiet"]),
        ({"has_feedback": "yes"}, ["liked", "disliked"]),
        ({"has_feedback": "no"}, ["failed", "quiet"]),
        ({"has_negative_feedback": "yes"}, ["disliked"]),
        ({"has_negative_feedback": "no"}, ["failed", "liked", "quiet"]),
    ],
)
def test_filters_by_errors_and_feedback(admin_client, assistant, parameter, expected):
    now = timezone.now()
    made = [
        ("failed", reply("", status="error", error_code="timeout")),
        ("liked", reply("good", feedback_rating="up")),
        ("disliked", reply("bad", feedback_rating="down")),
        ("quiet", reply("meh")),
    ]
    for age, (title, answer) in enumerate(made):
        conversation(assistant, visitor(), answer, title=title, at=now - timedelta(minutes=age))
    assert titles(admin_client.get(LIST, parameter)) == expected


def test_filters_by_assistant_and_date(admin_client, assistant):
    other = type(assistant).objects.create(slug="sales", name="Sales", system_prompt="Sell.")
    now = timezone.now()
    conversation(assistant, visitor(), title="support today", at=now)
    conversation(other, visitor(), title="sales today", at=now)
    conversation(assistant, visitor(), title="support long ago", at=now - timedelta(days=400))

    assert titles(admin_client.get(LIST, {"assistant__id__exact": other.pk})) == ["sales today"]
    listing = admin_client.get(LIST).content.decode()
    past_week = html.unescape(re.search(r'<a href="([^"]+)">Past 7 days</a>', listing)[1])
    assert set(titles(admin_client.get(LIST + past_week))) == {
        "support today",
        "sales today",
    }
    # The date hierarchy drills down by year.
    old_year = (now - timedelta(days=400)).year
    assert f"?created_at__year={old_year}" in listing
    assert titles(admin_client.get(LIST, {"created_at__year": old_year})) == ["support long ago"]


# --- A conversation's page -----------------------------------------------------------------


def test_a_conversation_reads_as_a_chat_with_each_replys_details(admin_client, assistant):
    session = conversation(
        assistant,
        visitor("Do you ship to Norway?"),
        reply(
            "Yes, in 3 days.",
            model="gpt-4o-mini",
            prompt_tokens=120,
            completion_tokens=8,
            ttft_ms=340,
            duration_ms=910,
            finish_reason="stop",
            feedback_rating="down",
            feedback_comment="Too slow!",
        ),
        visitor("Thanks"),
        reply("", status="error", error_code="upstream_timeout"),
        title="Do you ship to Norway?",
    )

    page = admin_client.get(admin_page_of(session))

    assert page.status_code == 200
    transcript = page.content.decode().split('class="module transcript"', 1)[1]
    said = re.findall(r'class="transcript-text">(.*?)</div>', transcript)
    assert said == ["Do you ship to Norway?", "Yes, in 3 days.", "Thanks", ""]
    assert transcript.index("Visitor") < transcript.index("Assistant")
    first_reply = transcript.split("transcript-assistant", 2)[1]
    for shown in [
        "gpt-4o-mini",
        "120 in, 8 out",
        "340 ms",
        "910 ms",
        "complete",
        "finish: stop",
        "down",
        "Too slow!",
    ]:
        assert shown in first_reply
    second_reply = transcript.split("transcript-assistant", 2)[2]
    assert "error (upstream_timeout)" in second_reply
    stamp = timezone.localtime(session.messages.first().created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert stamp in transcript


def test_a_conversation_shows_markup_as_text(admin_client, assistant):
    session = conversation(
        assistant,
        visitor(MARKUP),
        reply("<b>bold</b> " + MARKUP, feedback_rating="down", feedback_comment=MARKUP),
        title=MARKUP[:100],
        user_agent=MARKUP,
        metadata={"page": MARKUP},
    )

    page = admin_client.get(admin_page_of(session)).content.decode()
    listing = admin_client.get(LIST).content.decode()

    for shown in [page, listing]:
        assert "<script>alert" not in shown
        assert "<img src=x" not in shown
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 4


def test_line_breaks_are_kept_by_a_stylesheet_not_markup(admin_client, assistant):
    session = conversation(assistant, visitor("line one\nline two\n\n  indented"))

    page = admin_client.get(admin_page_of(session)).content.decode()

    assert '<div class="transcript-text">line one\nline two\n\n  indented</div>' in page
    transcript = page.split('class="module transcript"', 1)[1].split("</section>")[0]
    assert "style=" not in transcript
    assert "conversations/admin.css" in page
    with open(finders.find("conversations/admin.css")) as css:
        rule = css.read().split(".transcript-text {", 1)[1].split("}", 1)[0]
    assert "white-space: pre-wrap" in rule


def test_nobody_edits_a_transcript_not_even_a_superuser(admin_client, assistant):
    session = conversation(assistant, visitor("hi"), reply("hello"), title="Original")

    page = admin_client.get(admin_page_of(session)).content.decode()
    assert 'name="_save"' not in page
    assert 'name="messages-0-content"' not in page
    assert "<textarea" not in page

    changed = admin_client.post(
        admin_page_of(session), {"title": "Changed", "origin": "https://evil.example"}
    )
    assert changed.status_code == 403
    session.refresh_from_db()
    assert session.title == "Original"
    assert admin_client.get(LIST + "add/").status_code == 403
    assert [m.content for m in session.messages.all()] == ["hi", "hello"]

"""Exports of conversations from the admin: JSON Lines and CSV, streamed a batch at a time."""

import csv
import io
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from conversations.models import Message, Session
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS as LIST


def export(client, fmt: str, sessions, *, across: bool = False, path: str = LIST):
    """Post the export action for the ticked `sessions` (or every one the list selects)."""
    data = {"action": f"export_{fmt}", "_selected_action": [s.pk for s in sessions], "index": 0}
    return client.post(path, data | ({"select_across": "1"} if across else {}))


async def _read(response, *, after_first=None) -> list[bytes]:
    parts = aiter(response.streaming_content)
    first = await anext(parts)
    if after_first:
        after_first()
    return [first, *[part async for part in parts]]


def read(response, **kwargs) -> str:
    """The body of a streamed export, read the way the ASGI server reads it: asynchronously."""
    assert response.streaming and response.is_async
    return b"".join(async_to_sync(_read)(response, **kwargs)).decode()


def many_conversations(assistant, count: int, messages: int = 2) -> list[Session]:
    sessions = Session.objects.bulk_create(
        Session(assistant=assistant, title=f"Conversation {n}") for n in range(count)
    )
    Message.objects.bulk_create(
        Message(session=s, seq=seq, role="user" if seq % 2 else "assistant", content=f"m{seq}")
        for s in sessions
        for seq in range(1, messages + 1)
    )
    return sessions


@pytest.mark.django_db
def test_json_lines_hold_each_conversation_with_messages_as_the_api_shows_them(
    admin_client, api, assistant
):
    session = conversation(
        assistant,
        visitor("Where is my order?"),
        reply(
            "On its way.",
            model="gpt-4o-mini",
            prompt_tokens=12,
            completion_tokens=4,
            ttft_ms=200,
            duration_ms=650,
            finish_reason="stop",
            feedback_rating="down",
            feedback_comment="Vague",
        ),
        title="Where is my order?",
        origin="https://shop.example",
        ip_hash="f" * 64,
    )
    conversation(assistant, visitor("Not exported"))

    response = export(admin_client, "jsonl", [session])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    assert response["Content-Disposition"].endswith('.jsonl"')
    body = read(response)
    assert session.public_id not in body
    assert "f" * 64 not in body
    [line] = body.splitlines()
    exported = json.loads(line)
    assert set(exported) == {
        "conversation",
        "assistant",
        "created_at",
        "last_activity_at",
        "origin",
        "title",
        "messages",
    }
    assert exported["conversation"] == session.pk
    assert exported["assistant"] == "default"
    assert (exported["origin"], exported["title"]) == ("https://shop.example", session.title)
    assert exported["created_at"] == session.created_at.isoformat().replace("+00:00", "Z")
    assert exported["last_activity_at"] == session.last_activity_at.isoformat().replace(
        "+00:00", "Z"
    )
    # The very objects the visitor's API returns.
    assert (
        exported["messages"] == api.get(f"/api/v1/sessions/{session.public_id}").json()["messages"]
    )
    assert exported["messages"][1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 4}
    assert exported["messages"][1]["feedback"] == {"rating": "down", "comment": "Vague"}


@pytest.mark.django_db
def test_csv_has_a_row_per_message_and_escapes_what_spreadsheets_would_misread(
    admin_client, assistant
):
    tricky = 'He said "hi", then left;\nnew line'
    session = conversation(
        assistant,
        visitor(tricky),
        reply(
            '=HYPERLINK("http://evil.example")',
            model="m",
            prompt_tokens=5,
            completion_tokens=None,
            feedback_rating="up",
            feedback_comment="+1, great",
        ),
        title="Tricky",
    )
    empty = conversation(assistant, title="No messages yet")

    response = export(admin_client, "csv", [session, empty])

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = read(response)
    assert '"He said ""hi"", then left;\nnew line"' in body
    table = list(csv.DictReader(io.StringIO(body, newline="")))
    assert list(table[0]) == [
        "conversation",
        "assistant",
        "conversation_created_at",
        "seq",
        "role",
        "content",
        "status",
        "created_at",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "ttft_ms",
        "duration_ms",
        "finish_reason",
        "feedback_rating",
        "feedback_comment",
    ]
    first, second, third = table
    assert (first["conversation"], first["seq"], first["role"]) == (str(session.pk), "1", "user")
    assert first["content"] == tricky
    assert first["model"] == first["prompt_tokens"] == first["feedback_rating"] == ""
    assert first["conversation_created_at"] == session.created_at.isoformat().replace("+00:00", "Z")
    # A cell a spreadsheet would run as a formula is kept as text.
    assert second["content"] == '\'=HYPERLINK("http://evil.example")'
    assert second["feedback_comment"] == "'+1, great"
    assert (second["prompt_tokens"], second["completion_tokens"]) == ("5", "")
    assert (second["feedback_rating"], second["status"]) == ("up", "complete")
    assert (third["conversation"], third["seq"], third["content"]) == (str(empty.pk), "", "")
    assert session.public_id not in body


@pytest.mark.django_db
def test_all_conversations_a_filter_selects_can_be_exported(admin_client, assistant):
    kept = [
        conversation(assistant, visitor("hi"), reply("", status="error"), title=f"failed {n}")
        for n in range(3)
    ]
    conversation(assistant, visitor("hi"), reply("fine"), title="fine")

    # Ticking one on the page, then "select all" across the filtered list.
    response = export(admin_client, "jsonl", kept[:1], across=True, path=LIST + "?has_error=yes")

    exported = [json.loads(line)["conversation"] for line in read(response).splitlines()]
    assert exported == [s.pk for s in kept]


@pytest.mark.django_db
def test_the_export_reads_a_batch_at_a_time(admin_client, assistant):
    sessions = many_conversations(assistant, 450)

    response = export(admin_client, "jsonl", sessions)
    # This thread's connection itself (not the per-thread proxy): the reads run on it, but
    # the count after the first line is taken on the event loop's thread.
    with CaptureQueriesContext(connections["default"]) as reads:
        queries_for_first_line = []
        body = read(response, after_first=lambda: queries_for_first_line.append(len(reads)))

    # Batches of 200: the conversations and then their messages, once per batch, not per row.
    assert queries_for_first_line == [2]
    assert len(reads) == 6
    assert [sql["sql"].count("conversations_message") > 0 for sql in reads.captured_queries] == [
        False,
        True,
    ] * 3
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["conversation"] for line in lines] == [s.pk for s in sessions]
    assert all([m["seq"] for m in line["messages"]] == [1, 2] for line in lines)


@pytest.mark.django_db
def test_thousands_of_conversations_export(admin_client, assistant):
    sessions = many_conversations(assistant, 2500, messages=3)

    jsonl = read(export(admin_client, "jsonl", sessions[:1], across=True))
    table = read(export(admin_client, "csv", sessions[:1], across=True))

    assert len(jsonl.splitlines()) == 2500
    assert json.loads(jsonl.splitlines()[-1])["conversation"] == sessions[-1].pk
    assert len(list(csv.reader(io.StringIO(table, newline="")))) == 1 + 2500 * 3


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_is_streamed_from_async_code(default_assistant):
    sessions = await sync_to_async(many_conversations)(default_assistant, 250)
    staff = await get_user_model().objects.acreate_superuser("boss", "b@example.com", "pw")
    client = AsyncClient()
    await client.aforce_login(staff)

    response = await export(client, "csv", sessions[:1], across=True)

    assert response.status_code == 200
    assert response.is_async  # served chunk by chunk, not gathered into a list first
    parts = [part async for part in response.streaming_content]
    assert len(parts) == 1 + 250  # the header, then one chunk per conversation
    assert b"".join(parts).decode().count("\r\n") == 1 + 250 * 2
    await sync_to_async(connections.close_all)()


def test_unicode_line_separators_in_text_do_not_split_a_json_line(admin_client, assistant):
    text = "one\u2028two\u2029three\x85four"
    session = conversation(assistant, visitor(text))

    [line] = read(export(admin_client, "jsonl", [session])).splitlines()

    assert json.loads(line)["messages"][0]["content"] == text

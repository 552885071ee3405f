"""Conversations exported for staff, as JSON Lines or CSV, streamed a batch at a time.

The app runs under ASGI, where Django consumes a sync iterator whole before sending anything;
so the content is an async iterator, and each batch is one short database step (`db_step`):
memory holds one batch, and no connection is held while the client reads.
"""

import csv
import json
from collections.abc import AsyncIterator
from datetime import datetime

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework import serializers

from conversations import selectors
from conversations.db import db_step
from conversations.models import Session
from conversations.representations import MessageSerializer

BATCH_SIZE = 200
_LINE_BREAKS_ESCAPED = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})

CSV_COLUMNS = [
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
# A spreadsheet runs a cell that starts with one of these as a formula; visitors write them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_timestamp = serializers.DateTimeField()  # the API's format for the conversation's own times


def _when(value: datetime) -> str:
    return _timestamp.to_representation(value)


def _conversation(session: Session, messages: list[dict]) -> dict:
    # Not the public id (the visitor's secret) nor the IP hash.
    return {
        "conversation": session.pk,
        "assistant": session.assistant.slug,
        "created_at": _when(session.created_at),
        "last_activity_at": _when(session.last_activity_at),
        "origin": session.origin,
        "title": session.title,
        "messages": messages,
    }


def conversations_shown(sessions: QuerySet[Session], *, after: int, size: int) -> list[dict]:
    """The next batch of conversations, as exports show them (messages as the API does)."""
    return [
        _conversation(session, MessageSerializer(messages, many=True).data)
        for session, messages in selectors.conversations_batch(sessions, after=after, size=size)
    ]


async def conversations_iter(
    sessions: QuerySet[Session], *, batch_size: int = BATCH_SIZE
) -> AsyncIterator[dict]:
    """Every conversation in `sessions`, in pk order, fetched `batch_size` at a time."""
    # Keyset pagination: each batch starts after the last pk seen, so batch n costs as much
    # as batch 1, and conversations deleted meanwhile are simply not there.
    fetch = db_step(conversations_shown)
    after = 0
    while True:
        batch = await fetch(sessions, after=after, size=batch_size)
        for conversation in batch:
            yield conversation
        if len(batch) < batch_size:
            return
        after = batch[-1]["conversation"]


async def jsonl_lines(sessions: QuerySet[Session], **kwargs) -> AsyncIterator[str]:
    """One JSON object per line and conversation, its messages in the API's shape."""
    async for conversation in conversations_iter(sessions, **kwargs):
        # JSON allows these line separators raw in strings; line-splitting readers do not.
        line = json.dumps(conversation, ensure_ascii=False).translate(_LINE_BREAKS_ESCAPED)
        yield line + "\n"


class CsvLine:
    """A file-like object for csv.writer that hands back the line it is given."""

    def write(self, line: str) -> str:
        return line


def csv_cell(value) -> str | int:
    """A value as a CSV cell a spreadsheet shows as text: one starting like a formula is
    quoted with a leading apostrophe (the audit log's export uses it too)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_rows(conversation: dict) -> list[list]:
    head = [
        conversation["conversation"],
        conversation["assistant"],
        conversation["created_at"],
    ]
    if not conversation["messages"]:
        return [[*head, *[""] * (len(CSV_COLUMNS) - len(head))]]
    rows = []
    for m in conversation["messages"]:
        usage = m["usage"] or {}
        feedback = m["feedback"] or {}
        rows.append(
            [
                *head,
                m["seq"],
                m["role"],
                m["content"],
                m["status"],
                m["created_at"],
                m["model"],
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                m["ttft_ms"],
                m["duration_ms"],
                m["finish_reason"],
                feedback.get("rating"),
                feedback.get("comment"),
            ]
        )
    return rows


async def csv_lines(sessions: QuerySet[Session], **kwargs) -> AsyncIterator[str]:
    """A header, then one row per message (a conversation without any gets one row)."""
    writer = csv.writer(CsvLine())
    yield writer.writerow(CSV_COLUMNS)
    async for conversation in conversations_iter(sessions, **kwargs):
        rows = _csv_rows(conversation)
        yield "".join(writer.writerow([csv_cell(v) for v in row]) for row in rows)


FORMATS = {
    "jsonl": (jsonl_lines, "application/jsonl; charset=utf-8"),
    "csv": (csv_lines, "text/csv; charset=utf-8"),
}


def export_response(sessions: QuerySet[Session], *, fmt: str) -> StreamingHttpResponse:
    """A download of `sessions` in `fmt` ("jsonl" or "csv"), streamed as it is read."""
    lines, content_type = FORMATS[fmt]
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(sessions), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.{fmt}"'
    return response

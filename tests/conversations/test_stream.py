"""The streamed reply in-process: event order and shapes, and what stays an HTTP status.

The faults, disconnects and concurrency run against a real uvicorn in tests/test_stream_live.py.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.db.backends.signals import connection_created
from django.test import AsyncClient

from conversations.models import Message, Session
from tests.sse import delta_text, outline, parse_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_executor_connections"),
]


async def post_stream(session_id: str, body: dict, **headers):
    client = AsyncClient()
    return await client.post(
        f"/api/v1/sessions/{session_id}/messages",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


async def read_all(response) -> str:
    return b"".join([part async for part in response.streaming_content]).decode()


async def test_events_come_in_order_and_the_reply_stored_is_the_deltas(fake_llm, session):
    fake_llm.configure(reply_tokens=5)
    response = await post_stream(session.public_id, {"content": "Hello?", "stream": True})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    events = parse_text(await read_all(response))
    # Tokens that arrive in a burst may go out as one delta.
    assert outline(events) == ["message", "delta…", "done"]

    user, *deltas, done = events
    assert user.data["seq"] == 1 and user.data["role"] == "user"
    assert user.data["content"] == "Hello?" and user.data["status"] == "complete"
    text = "".join(delta.data["text"] for delta in deltas)
    assert text == "tok0 tok1 tok2 tok3 tok4"
    reply = done.data
    assert reply["seq"] == 2 and reply["role"] == "assistant" and reply["status"] == "complete"
    assert reply["content"] == text and reply["finish_reason"] == "stop"
    assert reply["usage"]["completion_tokens"] == 5 and reply["usage"]["prompt_tokens"] > 0
    assert reply["ttft_ms"] is not None and reply["duration_ms"] >= reply["ttft_ms"]

    stored = await Message.objects.aget(session=session, seq=2)
    assert stored.content == text and stored.status == "complete"
    assert stored.completion_tokens == 5 and stored.ttft_ms == reply["ttft_ms"]


@pytest.mark.parametrize("accept", ["text/event-stream", "text/event-stream, */*;q=0.1", "*/*"])
async def test_a_client_asking_for_an_event_stream_gets_one(fake_llm, session, accept):
    fake_llm.configure(reply_tokens=2)
    response = await post_stream(
        session.public_id, {"content": "Hi", "stream": True}, accept=accept
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert parse_text(await read_all(response))[-1].name == "done"


async def test_an_error_before_the_stream_is_json_whatever_the_client_accepts(session):
    response = await post_stream(
        "nope-not-a-session-id-at-all-000",
        {"content": "hi", "stream": True},
        accept="text/event-stream",
    )

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "not_found"


async def test_the_demo_responder_streams_word_by_word(default_assistant, settings):
    settings.OPENAI_API_KEY = ""
    session = await Session.objects.acreate(assistant=default_assistant)
    response = await post_stream(session.public_id, {"content": "Hi there", "stream": True})
    events = parse_text(await read_all(response))

    deltas = [event.data["text"] for event in events if event.name == "delta"]
    assert len(deltas) > 10 and deltas[0] == "[Demo "
    assert events[-1].name == "done" and events[-1].data["content"] == "".join(deltas)
    assert events[-1].data["model"] == "demo"


async def test_a_model_failure_is_one_error_event_after_the_200(fake_llm, session):
    fake_llm.configure(fault="status", fault_status=500)
    response = await post_stream(session.public_id, {"content": "Hello?", "stream": True})

    assert response.status_code == 200
    events = parse_text(await read_all(response))
    assert [event.name for event in events] == ["message", "error"]
    assert events[-1].data == {
        "code": "upstream_error",
        "message": "The model server failed (HTTP 500).",
        "retryable": True,
    }
    stored = await Message.objects.aget(session=session, seq=2)
    assert (stored.status, stored.error_code) == ("error", "upstream_error")


async def test_a_second_message_while_one_streams_is_409_before_any_stream(session):
    await Message.objects.acreate(session=session, seq=1, role="user", content="hi")
    await Message.objects.acreate(session=session, seq=2, role="assistant", status="streaming")

    response = await post_stream(session.public_id, {"content": "again", "stream": True})

    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "reply_in_progress"


@pytest.mark.parametrize(
    ("session_id", "body", "status"),
    [
        ("nope-not-a-session-id-at-all-000", {"content": "hi", "stream": True}, 404),
        (None, {"content": "", "stream": True}, 400),
        (None, {"content": "a" * 1001, "stream": True}, 400),
        (None, {"content": "hi", "stream": "true"}, 400),
        (None, {"content": "hi", "stream": 1}, 400),
        (None, {"content": "a" * 70_000, "stream": True}, 413),
    ],
)
async def test_what_is_known_before_the_stream_is_an_http_status(session, session_id, body, status):
    response = await post_stream(session_id or session.public_id, body)

    assert response.status_code == status
    assert json.loads(response.content)["error"]["code"]
    assert not await Message.objects.filter(session=session).aexists()


async def test_an_origin_the_assistant_does_not_allow_is_403_before_any_stream(session):
    session.assistant.allowed_origins = ["https://shop.example"]
    await session.assistant.asave()

    response = await post_stream(
        session.public_id, {"content": "hi", "stream": True}, origin="https://blog.example"
    )

    assert response.status_code == 403
    assert not await Message.objects.filter(session=session).aexists()


async def test_a_stream_that_never_started_is_closed_as_interrupted(fake_llm, session):
    # The visitor left before the first byte: Django closes the response without reading it.
    response = await post_stream(session.public_id, {"content": "Hello?", "stream": True})
    assert response.status_code == 200
    assert await Message.objects.filter(session=session, status="streaming").aexists()

    await sync_to_async(response.close)()

    stopped = await Message.objects.aget(session=session, seq=2)
    assert (stopped.status, stopped.content) == ("interrupted", "")
    assert fake_llm.requests == []  # the model was never asked
    again = await post_stream(session.public_id, {"content": "Back", "stream": True})
    assert parse_text(await read_all(again))[-1].name == "done"


async def test_a_stream_carries_cors_headers_for_an_embedding_site(fake_llm, session):
    response = await post_stream(
        session.public_id, {"content": "Hi", "stream": True}, origin="https://shop.example"
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert parse_text(await read_all(response))[-1].name == "done"


async def test_a_failure_of_our_own_ends_the_stream_and_is_stored_as_an_error(fake_llm, session):
    # The database refuses to store the finished reply (the disk is full, say).
    def refuse_completed_replies(execute, sql, params, many, context):
        if sql.startswith('UPDATE "conversations_message"') and "complete" in (params or ()):
            raise OperationalError("disk full")
        return execute(sql, params, many, context)

    wrapped = []

    def on_connect(sender, connection, **kwargs):
        connection.execute_wrappers.append(refuse_completed_replies)
        wrapped.append(connection)

    fake_llm.configure(reply_tokens=3)
    connection_created.connect(on_connect)
    try:
        response = await post_stream(session.public_id, {"content": "Hi", "stream": True})
        events = parse_text(await read_all(response))
    finally:
        connection_created.disconnect(on_connect)
        for connection in wrapped:  # the threads' connection objects outlive the test
            while refuse_completed_replies in connection.execute_wrappers:
                connection.execute_wrappers.remove(refuse_completed_replies)

    assert outline(events) == ["message", "delta…", "error"]
    assert delta_text(events) == "tok0 tok1 tok2"
    assert events[-1].data["code"] == "internal_error" and events[-1].data["retryable"]
    failed = await Message.objects.aget(session=session, seq=2)
    assert (failed.status, failed.error_code) == ("error", "internal_error")
    assert failed.content == "tok0 tok1 tok2" and failed.completion_tokens == 3

"""Streamed replies through a real uvicorn process, against the fake model on a real port.

Production serves streams through uvicorn's ASGI stack; the test client does not stream the
way it does, nor notice a visitor leaving. Each fault ends the stream with exactly one
`error` event, stores the reply, and leaves the conversation ready for the next message.
"""

import contextlib
import socket

import httpx
import pytest
from django.db import connection

from conversations.models import Message
from tests.helpers import raw_post
from tests.sse import Event, delta_text, outline, parse

FIRST_TOKEN_TIMEOUT = 2.0
READ_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def server(model_server_factory):
    return model_server_factory(
        OPENAI_FIRST_TOKEN_TIMEOUT=str(FIRST_TOKEN_TIMEOUT),
        OPENAI_TIMEOUT=str(READ_TIMEOUT),
        CHATKIT_STREAM_PING_SECONDS="0.1",
    )


@pytest.fixture
def session_id(server, default_assistant) -> str:
    return httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]


@contextlib.contextmanager
def stream(server, session_id: str, content: str = "Hello?"):
    """Open a streamed turn; yields the response and its events as they arrive."""
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream(
            "POST",
            f"/api/v1/sessions/{session_id}/messages",
            json={"content": content, "stream": True},
        ) as response,
    ):
        yield response, parse(response.iter_lines())


def read_turn(server, session_id: str, content: str = "Hello?") -> list[Event]:
    with stream(server, session_id, content) as (response, events):
        assert response.status_code == 200
        return [event for event in events if event.name != "ping"]


def reply(session_id: str, seq: int = 2) -> Message:
    return Message.objects.get(session__public_id=session_id, seq=seq)


def test_a_streamed_turn_through_uvicorn(server, fake, session_id):
    fake.configure(reply_tokens=3)
    with stream(server, session_id) as (response, events):
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        events = [event for event in events if event.name != "ping"]

    assert outline(events) == ["message", "delta…", "done"]
    assert delta_text(events) == "tok0 tok1 tok2"
    assert events[-1].data["content"] == "tok0 tok1 tok2" == reply(session_id).content
    assert events[-1].data["usage"]["completion_tokens"] == 3


def test_tokens_reach_the_visitor_as_the_model_sends_them(server, fake, session_id):
    fake.configure(reply_tokens=4, itl=1.0)
    with stream(server, session_id) as (_, events):
        first = next(event for event in events if event.name == "delta")
        # What the fake had sent when our first delta arrived: one token, not the reply.
        sent = [label for label, _ in fake.last_request["events"] if label == "token"]
        rest = [event for event in events if event.name != "ping"]

    assert first.data["text"] == "tok0 "
    assert len(sent) < 4
    assert rest[-1].name == "done" and rest[-1].data["content"] == "tok0 tok1 tok2 tok3"


def test_pings_keep_a_quiet_stream_alive(server, fake, session_id):
    fake.configure(ttft=0.8)  # the model thinks; the stream is pinged every 0.1 s meanwhile
    with stream(server, session_id) as (_, events):
        names = [event.name for event in events]

    assert names[0] == "message" and names[-1] == "done"
    first_delta = names.index("delta")
    assert "ping" in names[1:first_delta]


def test_a_visitor_leaving_mid_reply_stores_it_interrupted(server, fake, session_id):
    fake.configure(reply_tokens=200, itl=0.05)
    with stream(server, session_id) as (_, events):
        received = ""
        for event in events:
            if event.name == "delta":
                received += event.data["text"]
                if received.count("tok") == 3:
                    break  # the visitor closes the tab

    assert fake.wait_for_disconnect(10)  # the upstream request was cancelled at once
    assert server.wait_for_output(
        f"conversation={reply(session_id).session_id} seq=2 status=interrupted"
    )
    stopped = reply(session_id)
    assert stopped.status == "interrupted"
    assert stopped.content.startswith(received) and len(stopped.content.split()) < 200

    fake.configure(reply_tokens=2, itl=0)
    events = read_turn(server, session_id, "Still there?")
    assert events[-1].name == "done" and events[-1].data["seq"] == 4


@pytest.mark.parametrize(
    ("fault", "code", "retryable", "partial"),
    [
        ({"fault": "status", "fault_status": 429}, "upstream_rate_limited", True, ""),
        ({"fault": "status", "fault_status": 500}, "upstream_error", True, ""),
        ({"fault": "status", "fault_status": 400}, "upstream_rejected", False, ""),
        ({"fault": "drop"}, "upstream_unreachable", True, ""),
        ({"fault": "hang"}, "first_token_timeout", True, ""),
        ({"fault": "hang", "hang_after": 2}, "upstream_timeout", True, "tok0 tok1 "),
        ({"fault": "cut", "cut_after": 2}, "upstream_stream_failed", True, "tok0 tok1 "),
        (
            {"fault": "malformed", "malformed_after": 2},
            "upstream_stream_failed",
            True,
            "tok0 tok1 ",
        ),
    ],
    ids=lambda value: value.get("fault") if isinstance(value, dict) else None,
)
def test_an_upstream_fault_is_one_error_event(
    server, fake, session_id, fault, code, retryable, partial
):
    fake.configure(reply_tokens=5, fault_count=1, **fault)
    events = read_turn(server, session_id)

    assert [event.name for event in events if event.name != "delta"] == ["message", "error"]
    error = events[-1].data
    assert (error["code"], error["retryable"]) == (code, retryable)
    assert error["message"] and "fake" not in error["message"].lower()
    assert "".join(event.data["text"] for event in events if event.name == "delta") == partial
    failed = reply(session_id)
    assert (failed.status, failed.error_code, failed.content) == ("error", code, partial)

    events = read_turn(server, session_id, "Again?")  # the fault was one-off
    assert events[-1].name == "done" and events[-1].data["content"] == "tok0 tok1 tok2 tok3 tok4"


def test_a_second_message_while_one_streams_is_409_in_every_process(
    model_server_factory, server, fake, session_id
):
    other = model_server_factory()
    fake.configure(fault="hang", hang_after=1, reply_tokens=3, fault_count=1)
    interrupted = sum("status=interrupted" in line for line in server.output)
    with stream(server, session_id) as (_, events):
        assert next(event for event in events if event.name == "delta")
        for url in (server.url, other.url):
            busy = httpx.post(
                f"{url}/api/v1/sessions/{session_id}/messages",
                json={"content": "Me too", "stream": True},
            )
            assert busy.status_code == 409
            assert busy.json()["error"]["code"] == "reply_in_progress"

    assert server.wait_for_output("status=interrupted", count=interrupted + 1)
    events = read_turn(other, session_id, "Now?")
    assert events[-1].name == "done"


def open_raw_stream(server, session_id: str) -> socket.socket:
    body = b'{"content": "hi", "stream": true}'
    path = f"/api/v1/sessions/{session_id}/messages"
    return raw_post(server.port, path, body, f"Content-Length: {len(body)}\r\n")


def read_until(sock: socket.socket, marker: bytes) -> None:
    sock.settimeout(30)
    seen = b""
    while marker not in seen:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the stream"
        seen += chunk


def database_connections(server) -> int:
    """Database connections the server process has open (in use or idle in its pool)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [server.application_name],
            )
            return cursor.fetchone()[0]
    return server.open_files(connection.settings_dict["NAME"])


def test_fifty_open_streams_hold_no_thread_and_no_connection_each(
    model_server_factory, fake, default_assistant
):
    server = model_server_factory(
        DB_POOL_MIN_SIZE="1",
        DB_POOL_MAX_SIZE="2",  # 50 streams would exhaust this if each held a connection
        CHATKIT_DB_THREADS="2",
        PGAPPNAME="chatkit-fifty-streams",
    )
    server.application_name = "chatkit-fifty-streams"
    fake.configure(fault="hang")  # every model call waits until its visitor leaves
    ids = [httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"] for _ in range(50)]

    def open_streams(session_ids: list[str]) -> list[socket.socket]:
        socks = [open_raw_stream(server, session_id) for session_id in session_ids]
        for sock in socks:
            read_until(sock, b"event: message")  # the turn is open and waits for the model
        return socks

    def close(socks: list[socket.socket], total: int) -> None:
        for sock in socks:
            sock.close()
        assert server.wait_for_output("status=interrupted", timeout=30, count=total)

    # Warm up once, so pools the process keeps (its executor threads) exist before counting.
    close(open_streams(ids[:50]), 50)
    fake.reset()
    fake.configure(fault="hang")

    few = open_streams(ids[:5])
    assert fake.wait_for_requests(5, 10)
    threads_few, connections_few = server.threads(), database_connections(server)
    many = few + open_streams(ids[5:])
    assert fake.wait_for_requests(50, 20)
    threads_many, connections_many = server.threads(), database_connections(server)
    close(many, 100)

    # At most the database steps' pool may still be growing to its 2 threads.
    assert threads_many <= threads_few + 2, (threads_few, threads_many)
    assert connections_many <= max(connections_few, 2), (connections_few, connections_many)
    statuses = Message.objects.filter(session__public_id__in=ids, seq=4).values_list(
        "status", flat=True
    )
    assert list(statuses) == ["interrupted"] * 50

"""`manage.py serve` stopping on SIGTERM: real server processes, real signals, the fake model.

Replies being written get CHATKIT_SHUTDOWN_GRACE_SECONDS to finish; then each ends with a
retryable `server_shutdown` error and is stored `interrupted` with its text, and the process
exits 0 within the grace plus uvicorn's margin.
"""

import concurrent.futures
import contextlib
import signal
import time

import httpx
import pytest

from chatkit.serving import SHUTDOWN_MARGIN_SECONDS
from conversations.models import Message
from tests.live import SERVE
from tests.sse import delta_text, outline, parse, read_text

GRACE = 1.0
# How long the server may take, after the grace, to store the cut-off replies and exit.
EXIT_TIMEOUT = SHUTDOWN_MARGIN_SECONDS
# Long enough that a reply released at once ends well within it.
LONG_GRACE = 30.0


def serve(model_server_factory, *options: str, grace: float = GRACE):
    return model_server_factory([*SERVE, *options], CHATKIT_SHUTDOWN_GRACE_SECONDS=str(grace))


def new_session(server) -> str:
    return httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]


@contextlib.contextmanager
def held_stream(server, fake, session_id: str):
    """A streamed turn whose model has sent two tokens and holds the rest; yields the events
    still to come (pings left out)."""
    fake.configure(reply_tokens=5, hold_after=2)
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream(
            "POST",
            f"/api/v1/sessions/{session_id}/messages",
            json={"content": "Hello?", "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        events = (event for event in parse(response.iter_lines()) if event.name != "ping")
        assert next(events).name == "message"
        read_text(events, "tok0 tok1 ")
        yield events


def reply(session_id: str) -> Message:
    return Message.objects.get(session__public_id=session_id, seq=2)


def test_serve_answers_and_exits_0_on_sigterm(model_server_factory, default_assistant):
    server = serve(model_server_factory)
    assert httpx.get(f"{server.url}/health").status_code == 200

    server.signal(signal.SIGTERM)

    assert server.process.wait(EXIT_TIMEOUT) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reply_still_writing_when_the_grace_ends_is_cut_off_and_kept(
    model_server_factory, fake, default_assistant, workers
):
    server = serve(model_server_factory, "--workers", workers)
    assert server.wait_for_output("Started server process", count=int(workers), timeout=60)
    session_id = new_session(server)
    with held_stream(server, fake, session_id) as events:
        stopping = time.monotonic()
        server.signal(signal.SIGTERM)  # to the parent process, with workers
        rest = list(events)
        cut_off = time.monotonic()

    assert [event.name for event in rest] == ["error"]
    assert rest[0].data["code"] == "server_shutdown" and rest[0].data["retryable"] is True
    assert cut_off - stopping >= GRACE  # it had its grace
    stored = reply(session_id)
    assert (stored.status, stored.content, stored.error_code) == (
        "interrupted",
        "tok0 tok1 ",
        "server_shutdown",
    )
    assert fake.wait_for_disconnect(5)  # the upstream request was closed
    assert server.process.wait(EXIT_TIMEOUT) == 0


def test_a_reply_that_ends_within_the_grace_completes(
    model_server_factory, fake, default_assistant
):
    server = serve(model_server_factory, grace=LONG_GRACE)
    session_id = new_session(server)
    with held_stream(server, fake, session_id) as events:
        server.signal(signal.SIGTERM)
        assert server.wait_for_output("Shutting down")  # draining has begun
        fake.release()
        rest = list(events)

    assert outline(rest) == ["delta…", "done"]
    assert delta_text(rest) == "tok2 tok3 tok4"
    assert rest[-1].data["content"] == "tok0 tok1 tok2 tok3 tok4"
    assert reply(session_id).status == "complete"
    # Once its last reply is done, the server stops without waiting out the grace.
    assert server.process.wait(EXIT_TIMEOUT) == 0


def test_a_json_turn_cut_off_by_the_shutdown_is_503_and_kept(
    model_server_factory, fake, default_assistant
):
    server = serve(model_server_factory)
    session_id = new_session(server)
    fake.configure(reply_tokens=5, hold_after=2)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            httpx.post,
            f"{server.url}/api/v1/sessions/{session_id}/messages",
            json={"content": "Hello?"},
            timeout=30,
        )
        assert fake.wait_for_requests(1)  # the turn is asking the model
        server.signal(signal.SIGTERM)
        response = answer.result()

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "server_shutdown"
    stored = reply(session_id)
    assert (stored.status, stored.content) == ("interrupted", "tok0 tok1 ")
    assert server.process.wait(EXIT_TIMEOUT) == 0

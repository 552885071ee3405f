"""Self-checks for the fake OpenAI server, driven through the real openai SDK over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hi there"},
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(api_key="test", base_url=fake.base_url, max_retries=0, timeout=5)
    yield sdk
    sdk.close()


def _stream_text(client: openai.OpenAI, received: list[str], **kwargs: object) -> None:
    """Stream a completion, appending each content piece to ``received`` as it arrives."""
    stream = client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, **kwargs
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)


def test_non_streaming_echo_reply_and_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert reply.choices[0].message.content == "Echo: hi there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "gpt-test"
    assert reply.usage is not None
    # prompt = "Be brief." + "hi there" = 4 words; reply pieces = "Echo: ", "hi ", "there".
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 3)
    assert reply.usage.total_tokens == 7
    request = fake.last_request
    assert request is not None
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer test"
    assert request["body"]["messages"] == MESSAGES


def test_streaming_chunks_join_to_reply_with_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply="Hello there, friend.")
    chunks = list(
        client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, friend."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])
    assert [label for label, _ in fake.requests[-1]["events"]][-1] == "done"


def test_streaming_without_include_usage_has_no_usage_chunk(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.configure(reply="a b")
    chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))

    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_server_that_ignores_include_usage_sends_no_usage(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.configure(reply="a b", usage=False)
    chunks = list(
        client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_truncates_with_length(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply_tokens=10)
    reply = client.chat.completions.create(model="gpt-test", messages=MESSAGES, max_tokens=3)
    assert reply.choices[0].message.content == "tok0 tok1 tok2 "
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3

    chunks = list(
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True, max_completion_tokens=2
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "tok0 tok1 "
    assert chunks[-1].choices[0].finish_reason == "length"


def test_status_fault_applies_once_then_recovers(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(fault="status", fault_status=500, fault_count=1)

    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert excinfo.value.status_code == 500
    assert isinstance(excinfo.value.body, dict) and excinfo.value.body["type"] == "server_error"

    reply = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert reply.choices[0].message.content == "Echo: hi there"
    assert fake.knobs.fault is None


def test_rate_limit_fault(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(fault="status", fault_status=429)

    with pytest.raises(openai.RateLimitError) as excinfo:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    assert excinfo.value.response.headers["retry-after"] == "0"
    # Without fault_count the fault persists.
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)


def test_cut_mid_stream_raises_after_partial_text(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply_tokens=5, fault="cut", cut_after=2)
    received: list[str] = []

    with pytest.raises(openai.APIConnectionError):
        _stream_text(client, received)
    assert "".join(received) == "tok0 tok1 "


def test_malformed_chunk_raises_while_iterating(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply_tokens=5, fault="malformed", malformed_after=1, fault_count=1)
    received: list[str] = []

    with pytest.raises(json.JSONDecodeError):
        _stream_text(client, received)
    assert received == ["tok0 "]
    # The fault was one-shot, so the next turn streams normally.
    received.clear()
    _stream_text(client, received)
    assert "".join(received) == "tok0 tok1 tok2 tok3 tok4"


def test_drop_raises_connection_error(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(fault="drop", fault_count=1)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert client.chat.completions.create(model="gpt-test", messages=MESSAGES).choices


def test_hang_times_out_and_server_sees_disconnect(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(fault="hang")

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )
    assert fake.wait_for_disconnect(timeout=2)
    request = fake.last_request
    assert request is not None and request["disconnected"] and request["closed_at"] is not None


def test_hang_after_tokens_in_stream(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply_tokens=5, fault="hang", hang_after=2)
    received: list[str] = []

    with pytest.raises(openai.APITimeoutError):
        _stream_text(client.with_options(timeout=0.5), received)
    assert received == ["tok0 ", "tok1 "]
    assert fake.wait_for_disconnect(timeout=2)


def test_hold_after_tokens_waits_for_release(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply_tokens=4, hold_after=2)
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    pieces = (
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    )

    assert [next(pieces), next(pieces)] == ["tok0 ", "tok1 "]
    released_at = time.monotonic()
    fake.release()
    assert list(pieces) == ["tok2 ", "tok3"]

    events = fake.last_request["events"]  # type: ignore[index]
    labels = [label for label, _ in events]
    assert labels.index("hold") == labels.index("token") + 2  # right after the second token
    third_token_sent = [t for label, t in events if label == "token"][2]
    assert third_token_sent >= released_at  # and nothing more went out before the release


def test_a_held_stream_ends_when_the_client_leaves(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.configure(reply_tokens=4, hold_after=0)
    with pytest.raises(openai.APITimeoutError):
        _stream_text(client.with_options(timeout=0.5), [])
    assert fake.wait_for_disconnect(timeout=2)


def test_stream_is_not_buffered(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    # Wide gaps: the order below must hold even on a busy two-core CI machine.
    fake.configure(reply_tokens=5, itl=0.25)
    received_at: list[float] = []
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received_at.append(time.monotonic())

    events = fake.last_request["events"]  # type: ignore[index]
    labels = [label for label, _ in events]
    assert labels[:3] == ["request", "headers", "role"]
    assert labels[-1] == "done"
    sent_at = [t for label, t in events if label == "token"]
    assert len(sent_at) == len(received_at) == 5
    # Each token reaches the client before the server even produces the next one.
    for i in range(4):
        assert sent_at[i] <= received_at[i] < sent_at[i + 1]


def test_requests_share_one_keep_alive_connection(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    # The sync SDK drops the connection after a stream's [DONE], so reuse shows on JSON calls.
    for _ in range(3):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert fake.wait_for_requests(3, timeout=1)
    assert len({r["connection"] for r in fake.requests}) == 1
    assert fake.open_connections == 1


def test_models_and_unknown_path(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]

    response = httpx.get(f"{fake.base_url}/nope", timeout=5)
    assert response.status_code == 404
    assert set(response.json()["error"]) >= {"message", "type", "code"}


def test_reset_restores_construction_knobs() -> None:
    with FakeOpenAI(reply="default") as fake:
        fake.configure(reply="changed", fault="status")
        sdk = openai.OpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
        with pytest.raises(openai.InternalServerError):
            sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
        fake.reset()

        assert fake.requests == [] and fake.last_request is None
        assert fake.knobs.reply == "default" and fake.knobs.fault is None
        reply = sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
        assert reply.choices[0].message.content == "default"
        sdk.close()
    with pytest.raises(ValueError):
        FakeOpenAI(fault="explode")


def test_stop_releases_hanging_requests() -> None:
    fake = FakeOpenAI(fault="hang").start()
    sdk = openai.OpenAI(api_key="test", base_url=fake.base_url, max_retries=0, timeout=10)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
        except openai.APIError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert fake.wait_for_requests(1, timeout=5)
    # A hanging request must not block other connections.
    fake.configure(fault=None, reply="still serving")
    with openai.OpenAI(api_key="test", base_url=fake.base_url, max_retries=0, timeout=5) as other:
        reply = other.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert reply.choices[0].message.content == "still serving"
    fake.stop()
    worker.join(timeout=5)

    assert not worker.is_alive()
    assert isinstance(errors[0], openai.APIConnectionError)
    sdk.close()


@pytest.mark.asyncio
async def test_async_client_streams() -> None:
    with FakeOpenAI(reply="async works", ttft=0.01) as fake:
        sdk = openai.AsyncOpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
        stream = await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        again = await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
        await sdk.close()
        connections = {r["connection"] for r in fake.requests}

    assert text == "async works"
    assert again.choices[0].message.content == "async works"
    # AsyncStream drains the body after [DONE], so the connection is reused.
    assert len(connections) == 1


def test_cli_serves_until_interrupted() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--reply", "cli"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Ctrl-C as at a terminal, even when this suite runs in the background of a shell
        # (`cmd &`), whose children start with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("fake OpenAI server listening on http://127.0.0.1:")
            base_url = line.rsplit(" ", 1)[1].strip()
            sdk = openai.OpenAI(api_key="test", base_url=base_url, max_retries=0, timeout=5)
            reply = sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
            sdk.close()
            assert reply.choices[0].message.content == "cli"
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=5) == 0


def test_knobs_change_over_http_for_later_requests(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    changed = httpx.post(f"{fake.url}/_fake/knobs", json={"reply_tokens": 3}, timeout=5)
    refused = httpx.post(f"{fake.url}/_fake/knobs", json={"no_such_knob": 1}, timeout=5)
    reply = client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert changed.status_code == 200
    assert changed.json()["reply_tokens"] == 3
    assert refused.status_code == 400
    assert reply.choices[0].message.content == "tok0 tok1 tok2"
    assert httpx.get(f"{fake.url}/_fake/knobs", timeout=5).json()["reply_tokens"] == 3

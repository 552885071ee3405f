"""The LLM client: one SDK client per event loop, the real SDK against the fake server."""

import asyncio

import pytest

from conversations import llm


def request(text: str = "hi", max_tokens: int = 100) -> llm.ReplyRequest:
    return llm.ReplyRequest(
        model="fake-model",
        messages=[{"role": "user", "content": text}],
        temperature=0.5,
        max_tokens=max_tokens,
    )


async def collect(req: llm.ReplyRequest) -> tuple[str, llm.Finish]:
    parts, finish = [], None
    async for chunk in llm.stream_reply(req):
        if isinstance(chunk, llm.Finish):
            finish = chunk
        else:
            parts.append(chunk.text)
    return "".join(parts), finish


def test_one_client_per_event_loop(fake_llm):
    async def client_twice():
        return llm.get_client(), llm.get_client()

    first_a, first_b = asyncio.run(client_twice())
    second_a, _ = asyncio.run(client_twice())
    assert first_a is first_b
    assert first_a is not second_a


def test_consecutive_event_loops_each_reach_the_server(fake_llm):
    # A client bound to a closed loop would fail here with "Event loop is closed".
    for question in ["one", "two", "three"]:
        text, finish = asyncio.run(collect(request(question)))
        assert text == f"Echo: {question}"
        assert finish.finish_reason == "stop"
    assert len(fake_llm.requests) == 3


def test_usage_comes_from_the_stream(fake_llm):
    fake_llm.configure(reply="a b c")
    _, finish = asyncio.run(collect(request()))
    assert finish.completion_tokens == 3
    assert finish.prompt_tokens > 0
    assert finish.model == "fake-model"


def test_client_follows_changed_settings(fake_llm, settings):
    async def base_url():
        return str(llm.get_client().base_url)

    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    assert asyncio.run(base_url()).startswith("http://127.0.0.1:9/v1")


def test_demo_mode_without_a_key(settings):
    settings.OPENAI_API_KEY = ""
    assert llm.mode() == "demo"
    text, finish = asyncio.run(collect(request("what is this?")))
    assert text.startswith("[Demo mode]")
    assert "what is this?" in text
    assert finish.model == llm.DEMO_MODEL


def test_demo_respects_max_tokens(settings):
    settings.OPENAI_API_KEY = ""
    text, finish = asyncio.run(collect(request(max_tokens=3)))
    assert len(text.split()) == 3
    assert finish.finish_reason == "length"


def test_stopping_early_closes_the_upstream_request(fake_llm):
    fake_llm.configure(reply_tokens=50, itl=0.05)

    async def first_piece_then_leave():
        stream = llm.stream_reply(request())
        piece = await anext(stream)
        await stream.aclose()
        return piece

    assert isinstance(asyncio.run(first_piece_then_leave()), llm.Delta)
    assert fake_llm.wait_for_disconnect(5)


@pytest.mark.parametrize("status", [500, 502])
def test_server_errors_are_retryable(fake_llm, status):
    fake_llm.configure(fault="status", fault_status=status, fault_count=1)
    with pytest.raises(llm.LLMError) as raised:
        asyncio.run(collect(request()))
    assert raised.value.retryable and raised.value.status == 502


@pytest.mark.parametrize("connections", [2, 3])
def test_the_http_pool_holds_as_many_streams_as_configured(fake_llm, settings, connections):
    settings.OPENAI_MAX_CONNECTIONS = connections
    settings.OPENAI_TIMEOUT = 0.5  # how long a request waits for a free connection
    fake_llm.configure(reply_tokens=3, hold_after=1)  # each stream holds its connection

    async def three_streams_at_once():
        streams = [llm.stream_reply(request()) for _ in range(3)]
        firsts = await asyncio.gather(
            *(anext(stream) for stream in streams), return_exceptions=True
        )
        fake_llm.release()
        for stream in streams:
            await stream.aclose()
        return firsts

    firsts = asyncio.run(three_streams_at_once())
    timed_out = [first for first in firsts if isinstance(first, llm.LLMError)]
    assert len(timed_out) == 3 - connections
    assert all(error.code == "upstream_timeout" for error in timed_out)
    assert sum(isinstance(first, llm.Delta) for first in firsts) == connections

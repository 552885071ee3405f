"""The model's reply read on a task of its own: its deadlines' one timer and its pings."""

import asyncio

import pytest

from conversations import llm
from conversations.services.model_text import PING, ModelReader, Progress


def request() -> llm.ReplyRequest:
    return llm.ReplyRequest(
        model="fake-model",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.5,
        max_tokens=100,
    )


async def read_all(reader: ModelReader) -> list:
    pieces = []
    try:
        while (piece := await reader.next()) is not None:
            pieces.append(piece)
    finally:
        await reader.close()
    return pieces


async def test_once_the_first_token_came_the_whole_replys_deadline_holds(fake_llm, settings):
    # The first token's deadline would end this reply long before its last token: once the
    # first one came, the timer waits for the whole reply's.
    settings.OPENAI_FIRST_TOKEN_TIMEOUT = 0.3
    settings.CHATKIT_REPLY_TIMEOUT = 30
    fake_llm.configure(reply_tokens=6, itl=0.1)
    progress = Progress()

    pieces = await read_all(ModelReader(request(), progress))

    assert "".join(pieces) == "tok0 tok1 tok2 tok3 tok4 tok5"
    assert progress.finish is not None and progress.finish.finish_reason == "stop"


async def test_no_first_token_in_time_is_a_first_token_timeout(fake_llm, settings):
    settings.OPENAI_FIRST_TOKEN_TIMEOUT = 0.2
    fake_llm.configure(ttft=5, reply_tokens=2)
    with pytest.raises(llm.LLMError) as raised:
        await read_all(ModelReader(request(), Progress()))
    assert (raised.value.code, raised.value.status) == ("first_token_timeout", 504)
    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 5)  # the upstream request


async def test_a_silent_model_is_pinged_and_its_text_still_comes(fake_llm):
    fake_llm.configure(ttft=0.5, reply_tokens=2)
    pieces = await read_all(ModelReader(request(), Progress(), ping=0.1))

    first_text = next(i for i, piece in enumerate(pieces) if piece is not PING)
    assert first_text >= 1  # pinged while the model was silent
    assert "".join(p for p in pieces if p is not PING) == "tok0 tok1"


async def test_without_ping_a_silent_model_is_only_waited_for(fake_llm):
    fake_llm.configure(ttft=0.3, reply_tokens=2)
    pieces = await read_all(ModelReader(request(), Progress()))
    assert PING not in pieces and "".join(pieces) == "tok0 tok1"

"""The chat-turn pipeline, driven directly from async code as the views drive it."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations import services
from conversations.models import Message, Session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(default_assistant):
    return Session.objects.create(assistant=default_assistant)


def connection_is_open() -> bool:
    # Runs on the thread-sensitive executor thread, where every db_step runs too.
    return connections["default"].connection is not None


async def test_no_database_connection_is_held_while_the_model_writes(fake_llm, session):
    fake_llm.configure(fault="hang")  # the model never answers until we go away
    turn = asyncio.create_task(services.message_post(session=session, content="hello"))
    assert await asyncio.to_thread(fake_llm.wait_for_requests, 1, 5)

    assert await sync_to_async(connection_is_open)() is False

    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn


async def test_a_cancelled_turn_is_stored_as_interrupted(fake_llm, session):
    fake_llm.configure(fault="hang")
    turn = asyncio.create_task(services.message_post(session=session, content="hello"))
    assert await asyncio.to_thread(fake_llm.wait_for_requests, 1, 5)
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn

    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 5)  # upstream closed
    reply = await Message.objects.aget(session=session, seq=2)
    assert (reply.status, reply.content) == (Message.Status.INTERRUPTED, "")


async def test_a_consumer_leaving_mid_reply_keeps_the_partial_text(fake_llm, session):
    fake_llm.configure(reply_tokens=50, itl=0.01)
    deltas = []
    events = services.turn_run(session=session, content="hello")
    async for event in events:
        if event.kind == "delta":
            deltas.append(event.text)
            if len(deltas) == 3:
                break
    await events.aclose()

    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 5)  # upstream closed
    reply = await Message.objects.aget(session=session, seq=2)
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.content == "".join(deltas) == "tok0 tok1 tok2 "
    # The conversation takes the next message.
    _, reply = await services.message_post(session=session, content="again")
    assert (reply.seq, reply.status) == (4, Message.Status.COMPLETE)

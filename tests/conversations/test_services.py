"""The chat-turn pipeline, driven directly from async code as the views drive it."""

import asyncio
import contextlib
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created

from conversations import llm, policy, services
from conversations.aio import cleanup_started, cleanups_finished
from conversations.exceptions import ReplyInFlight, SessionNotFound
from conversations.models import Message, Session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_executor_connections"),
]

# A caller without an Origin (a server, curl), as the gate sees it.
SERVER = policy.Visitor(origin="", own_host="testserver", ip="", ip_hash="")


@contextlib.contextmanager
def connections_opened():
    """Every database connection opened meanwhile, in whichever thread."""
    opened = []

    def on_connect(sender, connection, **kwargs):
        opened.append(connection)

    connection_created.connect(on_connect)
    try:
        yield opened
    finally:
        connection_created.disconnect(on_connect)


@contextlib.contextmanager
def session_locked_elsewhere(session: Session):
    """Hold the session's row lock (SQLite: the database's write lock) from another connection."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                if other.vendor == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")
                else:
                    cursor.execute("BEGIN")
                    cursor.execute(
                        "SELECT id FROM conversations_session WHERE id = %s FOR UPDATE",
                        [session.pk],
                    )
                locked.set()
                release.wait(10)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


@contextlib.contextmanager
def database_step_started():
    """An event set when a database step's thread connects (then it waits for the lock)."""
    started = threading.Event()

    def on_connect(**kwargs):
        started.set()

    connection_created.connect(on_connect)
    try:
        yield started
    finally:
        connection_created.disconnect(on_connect)


async def statuses(session: Session) -> list[tuple[int, str]]:
    return [(m.seq, m.status) async for m in Message.objects.filter(session=session)]


async def test_no_database_connection_is_held_while_the_model_writes(fake_llm, session):
    fake_llm.configure(fault="hang")  # the model never answers until we go away
    with connections_opened() as opened:
        turn = asyncio.create_task(
            services.message_post(visitor=SERVER, public_id=session.public_id, content="hello")
        )
        assert await asyncio.to_thread(fake_llm.wait_for_requests, 1, 5)

    assert opened  # the turn's steps connected...
    assert all(connection.connection is None for connection in opened)  # ...and let go

    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn


async def test_a_cancelled_turn_is_stored_as_interrupted(fake_llm, session):
    fake_llm.configure(fault="hang")
    turn = asyncio.create_task(
        services.message_post(visitor=SERVER, public_id=session.public_id, content="hello")
    )
    assert await asyncio.to_thread(fake_llm.wait_for_requests, 1, 5)
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn

    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 5)  # upstream closed
    reply = await Message.objects.aget(session=session, seq=2)
    assert (reply.status, reply.content) == (Message.Status.INTERRUPTED, "")


async def test_cancelled_before_opening_the_turn_leaves_nothing_in_flight(fake_llm, session):
    with database_step_started() as started, session_locked_elsewhere(session):
        turn = asyncio.create_task(services.turn_open(public_id=session.public_id, content="hello"))
        assert await asyncio.to_thread(started.wait, 5)  # the turn's step waits for the lock
        turn.cancel()
        # The step runs once the lock is released, and commits.
    with pytest.raises(asyncio.CancelledError):
        await turn
    await cleanups_finished()  # the clean-up the cancellation left running

    assert await statuses(session) == [(1, "complete"), (2, "interrupted")]
    _, reply = await services.message_post(
        visitor=SERVER, public_id=session.public_id, content="again"
    )
    assert reply.status == Message.Status.COMPLETE


async def test_cancelled_twice_while_opening_the_turn_leaves_nothing_in_flight(fake_llm, session):
    with database_step_started() as started, session_locked_elsewhere(session):
        turn = asyncio.create_task(services.turn_open(public_id=session.public_id, content="hi"))
        assert await asyncio.to_thread(started.wait, 5)
        turn.cancel()
        await cleanup_started()  # the task took the cancellation and is cleaning up
        turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    await cleanups_finished()

    assert await statuses(session) == [(1, "complete"), (2, "interrupted")]


async def test_closing_at_the_first_event_stores_the_reply_as_interrupted(fake_llm, session):
    turn = await services.turn_open(public_id=session.public_id, content="hello")
    events = services.turn_events(turn)
    assert (await anext(events)).kind == "message"
    await events.aclose()

    assert await statuses(session) == [(1, "complete"), (2, "interrupted")]


async def test_a_turn_that_never_ran_is_closed_by_its_owner(fake_llm, session):
    turn = await services.turn_open(public_id=session.public_id, content="hello")
    with pytest.raises(ReplyInFlight):
        await services.turn_open(public_id=session.public_id, content="meanwhile")
    await services.turn_end(turn, status=Message.Status.INTERRUPTED)
    assert await statuses(session) == [(1, "complete"), (2, "interrupted")]
    await services.turn_end(turn, status=Message.Status.COMPLETE)  # a second end changes nothing
    assert await statuses(session) == [(1, "complete"), (2, "interrupted")]


async def test_a_consumer_leaving_mid_reply_keeps_the_partial_text(fake_llm, session):
    fake_llm.configure(reply_tokens=50, itl=0.01)
    deltas = []
    turn = await services.turn_open(public_id=session.public_id, content="hello")
    events = services.turn_events(turn)
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
    _, reply = await services.message_post(
        visitor=SERVER, public_id=session.public_id, content="again"
    )
    assert (reply.seq, reply.status) == (4, Message.Status.COMPLETE)


async def test_a_model_that_never_answers_is_cut_off_at_the_deadline(fake_llm, session, settings):
    settings.CHATKIT_REPLY_TIMEOUT = 0.3
    settings.OPENAI_TIMEOUT = 60  # the deadline, not the read timeout, ends this turn
    fake_llm.configure(fault="hang")
    with pytest.raises(llm.LLMError) as raised:
        await services.message_post(visitor=SERVER, public_id=session.public_id, content="hello?")
    assert raised.value.code == "reply_timeout"
    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 10)
    assert await statuses(session) == [(1, "complete"), (2, "error")]


async def test_a_reply_longer_than_allowed_is_cut_off(fake_llm, session, settings):
    settings.CHATKIT_REPLY_TIMEOUT = 0.2
    fake_llm.configure(reply_tokens=100, itl=0.05)
    with pytest.raises(llm.LLMError) as raised:
        await services.message_post(
            visitor=SERVER, public_id=session.public_id, content="write a novel"
        )
    assert (raised.value.code, raised.value.status) == ("reply_timeout", 504)
    reply = await Message.objects.aget(session=session, seq=2)
    assert reply.status == Message.Status.ERROR and reply.content.startswith("tok0 ")
    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 10)


def test_a_turn_on_a_deleted_session_is_not_found(session):
    Session.objects.filter(pk=session.pk).delete()
    with pytest.raises(SessionNotFound):
        services.turn_open_sync(public_id=session.public_id, content="hi")
    with pytest.raises(SessionNotFound):
        services.session_delete(session=session)


def test_a_reply_ending_after_its_conversation_was_deleted_is_dropped_quietly(session):
    turn = services.turn_open_sync(public_id=session.public_id, content="hi")
    Session.objects.filter(pk=session.pk).delete()
    services.turn_end_sync(turn, content="late", status=Message.Status.COMPLETE)
    assert not Message.objects.exists()


def test_a_reply_is_ended_once(session):
    turn = services.turn_open_sync(public_id=session.public_id, content="hi")
    services.turn_end_sync(turn, status="error", error_code="abandoned")
    services.turn_end_sync(turn, content="late", status=Message.Status.COMPLETE)
    stored = Message.objects.get(pk=turn.reply.pk)
    assert (stored.status, stored.content) == ("error", "")


async def test_what_the_upstream_reports_is_cut_to_fit_its_columns(session):
    turn = await services.turn_open(public_id=session.public_id, content="hello")

    reply = await sync_to_async(services.turn_end_sync)(
        turn, content="Hi", status="complete", model="m" * 300, finish_reason="f" * 100
    )

    stored = await Message.objects.aget(pk=reply.pk)
    assert stored.status == "complete"
    assert stored.model == "m" * 100 and stored.finish_reason == "f" * 32


def test_messages_stored_another_way_are_followed_not_collided_with(session, caplog):
    # Say, restored from a backup by hand: the conversation's next seq was left behind.
    Message.objects.create(session=session, seq=1, role="user", content="restored")
    Message.objects.create(session=session, seq=2, role="assistant", content="from a backup")

    turn = services.turn_open_sync(public_id=session.public_id, content="hi")
    services.turn_end_sync(turn)

    assert (turn.user_message.seq, turn.reply.seq) == (3, 4)
    assert Session.objects.get(pk=session.pk).next_seq == 5
    contents = [message["content"] for message in turn.request.messages]
    assert contents == ["Be helpful.", "restored", "from a backup", "hi"]
    assert "next seq caught up" in caplog.text


def test_the_model_sees_the_assistants_last_messages_and_the_question(session):
    session.assistant.context_messages = 3
    session.assistant.save()
    for content in ("one", "two"):
        services.turn_end_sync(
            services.turn_open_sync(public_id=session.public_id, content=content),
            status=Message.Status.COMPLETE,
            content=f"re: {content}",
        )

    turn = services.turn_open_sync(public_id=session.public_id, content="three")
    services.turn_end_sync(turn)

    assert turn.request.messages[1:] == [
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "re: two"},
        {"role": "user", "content": "three"},
    ]

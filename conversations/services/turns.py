"""The chat turn: one pipeline for every entry point (seed `/api/chat`, v1 JSON, v1 stream).

    turn = await turn_start(visitor=..., public_id=..., content=...)  # 403, 404, 409, 429…
    async for event in turn_events(turn): ...          # message, delta…, then done | error

`turn_open` stores the visitor's message with an empty reply marked `streaming`;
`turn_events` streams the model's answer. Every way a reply ends goes through `turn_end`
(or its sync twin): `complete`; `error`, with the partial text kept, when the model fails;
`interrupted`, the default, when the turn ends with no outcome (its consumer went away, and
the upstream request was closed first; or it never ran; or the process writing it is gone:
error code `abandoned`). Each database step is a short sync function run through `db_step`,
so no connection is held while the model writes.

`turn_start` is the entry point: the admission gate's rate limits and lease
(conversations.policy, in the shared cache) first, then `turn_open`: one database step
(`turn_open_sync`) that looks the conversation up with its assistant (only if it is the
visitor's: anonymous, or theirs by their token's `sub`), checks the visitor's origin and
identity, and in one transaction locks the conversation's row with the UPDATE that takes the
turn's two seqs (`Session.next_seq`), reads the history, inserts both messages in one
statement and reserves the reply's tokens of the assistant's daily budget. The partial unique
index on `streaming` replies is the one-reply-at-a-time guard: when the reply cannot go in,
the opening is rolled back and takes the slow way once (a reply whose process is gone is
ended, one being written is a 409). `turn_end` is the other step: the reply's final UPDATE,
which settles its tokens; then the visitor's lease is released and, while this process
lives, a final write that failed is retried. Five statements a turn, and two for the budget
(tests/conversations/test_statements.py holds a turn to six at most, and two check-outs).
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from chatkit import draining
from conversations import heartbeat, limits, llm, metrics, policy, selectors
from conversations.aio import see_through
from conversations.db import db_step
from conversations.exceptions import (
    BudgetExhausted,
    ChatKitError,
    InternalError,
    ReplyInFlight,
    ServerShutdown,
    SessionNotFound,
)
from conversations.models import Message, Session
from conversations.services import budgets
from conversations.services.model_text import PING, ModelReader, Progress, stored_values
from conversations.turn_log import turn_logged

logger = logging.getLogger(__name__)

TITLE_CHARS = Session._meta.get_field("title").max_length


@dataclass(frozen=True)
class Turn:
    user_message: Message | None  # None only for a reply found abandoned without one
    reply: Message
    request: llm.ReplyRequest | None  # None once the model is no longer to be asked
    assistant: str  # the assistant's slug, for the log and the metrics
    reservation: budgets.Reservation | None = None  # None in demo mode: nothing is spent
    # The visitor's, for the concurrent-replies limit.
    lease: limits.Lease = field(default_factory=lambda: limits.NO_LEASE)


@dataclass(frozen=True)
class TurnEvent:
    """What a turn reports, in order: `message`, `delta`s (and `ping`s, when asked for), then
    `done` or `error`."""

    kind: str
    message: Message | None = None
    text: str = ""
    error: llm.LLMError | ServerShutdown | None = None


# --- One reply at a time per conversation --------------------------------------------------


def session_lock(session: Session, **changes: Any) -> None:
    """Lock the conversation's row until the transaction ends (and apply `changes`).

    An UPDATE takes the row lock on PostgreSQL (SQLite's IMMEDIATE transactions serialise
    writers anyway), so turns and deletions of one conversation happen one at a time.
    """
    changes = changes or {"last_activity_at": F("last_activity_at")}
    if not Session.objects.filter(pk=session.pk).update(**changes):
        raise SessionNotFound()  # deleted since it was looked up


def one_reply_at_a_time(*, session: Session, now: datetime) -> None:
    """Raise ReplyInFlight while a reply of this conversation is being written (call it with
    the row locked). One that a dead process left `streaming` holds nothing up: it is ended
    here, as `abandoned`, the one write this guard makes."""
    reply = selectors.reply_streaming(session=session)
    if reply is None:
        return
    if not selectors.reply_abandoned(reply, now=now):
        raise _reply_in_flight()
    question = None  # only read when the log line would show it
    if settings.CHATKIT_LOG_CONTENT:
        question = session.messages.filter(seq=reply.seq - 1).first()
    assistant = session.assistant
    turn = Turn(
        user_message=question,
        reply=reply,
        request=None,
        assistant=assistant.slug,
        reservation=budgets.reservation_of(reply, assistant),
    )
    turn_end_sync(turn, content=reply.content, error_code="abandoned")


def replies_abandoned_end(*, now: datetime | None = None, batch: int = 100) -> int:
    """End the replies of processes that are gone (a killed worker), without waiting for a
    visitor to write again: as `one_reply_at_a_time` would, so each is closed as
    `interrupted` and settles its budget reservation. Run once a beat by every serving
    process; returns how many it ended."""
    now = now or timezone.now()
    in_flight = selectors.replies_in_flight(now=now).values("pk")
    left = (
        Message.objects.filter(status=Message.Status.STREAMING)
        .exclude(pk__in=in_flight)
        .exclude(pk__in=heartbeat.writing())
        .select_related("session__assistant")[:batch]
    )
    ended = 0
    for reply in left:
        try:
            with transaction.atomic():
                session_lock(reply.session)
                one_reply_at_a_time(session=reply.session, now=now)
        except (ReplyInFlight, SessionNotFound):
            continue  # it is alive after all, or its conversation is gone
        ended += 1
    return ended


heartbeat.on_every_beat(replies_abandoned_end)


# --- Opening ---------------------------------------------------------------------------------


class _Blocked(Exception):
    """A turn's messages did not go in: another reply is `streaming` in the conversation (or
    its next seq fell behind its messages). Raised to roll the opening back."""


def turn_open_sync(
    *,
    public_id: str,
    content: str,
    visitor: policy.Visitor | None = None,
    lease: limits.Lease = limits.NO_LEASE,
) -> Turn:
    """`turn_open`'s database step: look the conversation up (with its assistant) and check
    the visitor's origin (no `visitor`: a caller that is trusted); then store the visitor's
    message and an empty reply in flight, its tokens reserved of the day's budget, and gather
    the model's context.

    Raises SessionNotFound, OriginNotAllowed, TokenRequired, TokenInvalid, TokenExpired,
    ReplyInFlight, BudgetExhausted (and then stores nothing).
    """
    # The ownership check rides in the lookup: a WHERE on the visitor's `sub`, no query more.
    session = selectors.session_get(
        public_id=public_id, visitor_sub=policy.session_visitor_sub(visitor)
    )
    if visitor is not None:
        policy.turn_origin_check(visitor, session.assistant)
        who = policy.session_owner_check(visitor, session)
        if who is not None and session.visitor_sub:
            # The latest token of its visitor says how they are named now.
            session.visitor_name = who.name or session.visitor_name
            session.visitor_email = who.email or session.visitor_email
    owner = heartbeat.beat_now()  # before the reply names this process as its writer
    try:
        return _turn_store(session, content=content, owner=owner, lease=lease)
    except _Blocked:
        # The slow way, once: a reply its process left is ended (ReplyInFlight while one is
        # being written), then the turn tried again.
        _turn_unblock(session)
    try:
        return _turn_store(session, content=content, owner=owner, lease=lease)
    except _Blocked:
        raise _reply_in_flight() from None  # another turn got in first, meanwhile


def _turn_store(session: Session, *, content: str, owner: str, lease: limits.Lease) -> Turn:
    """The opening transaction. Its statements: the UPDATE that locks the conversation's row
    and takes the two messages' seqs, the history, one INSERT of both messages (the partial
    unique index on `streaming` replies keeps a second one out: then nothing goes in, and
    _Blocked is raised), and the budget's reservation."""
    assistant = session.assistant
    demo = llm.mode() == "demo"
    model = llm.DEMO_MODEL if demo else assistant.model or settings.OPENAI_MODEL
    now = timezone.now()
    reply = None
    try:
        with transaction.atomic():
            seq = _seqs_take(session, now=now, title=content[:TITLE_CHARS])
            history = selectors.turn_context(session=session, before=seq, question=content)
            messages = [{"role": "system", "content": assistant.system_prompt}, *history]
            reservation = None
            if not demo:  # the demo responder spends nothing
                reservation = budgets.reservation_for(
                    assistant=assistant,
                    max_tokens=assistant.max_output_tokens,
                    prompt=budgets.prompt_estimate(messages),
                    now=now,
                )
            user_message = Message(
                session=session, seq=seq, role=Message.Role.USER, content=content
            )
            reply = Message(
                session=session,
                seq=seq + 1,
                role=Message.Role.ASSISTANT,
                status=Message.Status.STREAMING,
                model=model,
                owner=owner,
                reserved_tokens=reservation.tokens if reservation else None,
                reserved_prompt_tokens=reservation.prompt_estimate if reservation else None,
                reserved_on=reservation.day if reservation else None,
            )
            if not _messages_insert(user_message, reply):
                raise _Blocked()
            # Owned before anyone can see it: another turn of this process must not take it
            # for one this process left behind.
            heartbeat.own(reply.pk)
            if reservation is not None:
                budgets.budget_reserve(reservation, slug=assistant.slug, now=now)
    except BaseException as exc:
        if reply is not None and reply.pk is not None:
            heartbeat.disown(reply.pk)  # it was never stored
        if isinstance(exc, BudgetExhausted):
            budgets.budget_exhausted_report(assistant=assistant, now=now)
        raise
    request = llm.ReplyRequest(
        model=model,
        messages=messages,
        temperature=assistant.temperature,
        max_tokens=assistant.max_output_tokens,
    )
    return Turn(
        user_message=user_message,
        reply=reply,
        request=request,
        assistant=assistant.slug,
        reservation=reservation,
        lease=lease,
    )


def _seqs_take(session: Session, *, now: datetime, title: str) -> int:
    """Lock the conversation's row until the transaction ends, mark its activity (and its
    title, if it has none; its visitor's name and email as the session has them now) and take
    two seqs; returns the first. Raises SessionNotFound."""
    fields = Session._meta
    values = [
        fields.get_field("last_activity_at").get_db_prep_save(now, connection),
        fields.get_field("title").get_db_prep_save(title, connection),
        fields.get_field("visitor_name").get_db_prep_save(session.visitor_name, connection),
        fields.get_field("visitor_email").get_db_prep_save(session.visitor_email, connection),
        session.pk,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_sql().seqs_take, values)
        row = cursor.fetchone()
    if row is None:
        raise SessionNotFound()  # deleted since it was looked up
    return row[0] - 2


def _messages_insert(*messages: Message) -> bool:
    """Insert a turn's messages, all or none: False when one would break a unique constraint
    (a reply `streaming` already; a seq taken). Sets the primary keys of those stored."""
    fields = _insert_fields()
    values = [
        field.get_db_prep_save(field.pre_save(message, add=True), connection)
        for message in messages
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(_sql().messages_insert, values)
        stored = {seq: pk for pk, seq in cursor.fetchall()}
    if len(stored) < len(messages):
        return False
    for message in messages:
        message.pk = stored[message.seq]
        message._state.adding, message._state.db = False, connection.alias
    return True


def _turn_unblock(session: Session) -> None:
    """Why a turn's messages did not go in: a reply `streaming` in the conversation is ended
    if its process is gone, else ReplyInFlight. And a next seq that fell behind the
    conversation's messages (written some other way than a turn) catches up with them."""
    with transaction.atomic():
        session_lock(session)
        one_reply_at_a_time(session=session, now=timezone.now())
        last = session.messages.aggregate(last=Max("seq"))["last"] or 0
        if Session.objects.filter(pk=session.pk, next_seq__lte=last).update(next_seq=last + 1):
            logger.warning("conversation %d: its next seq caught up with its messages", session.pk)


def _reply_in_flight() -> ReplyInFlight:
    # The reply may end any moment (and a gone writer is known within three beats).
    return ReplyInFlight(retry_after=min(5, max(1, round(settings.CHATKIT_HEARTBEAT_SECONDS))))


def _insert_fields() -> list:
    return [field for field in Message._meta.concrete_fields if not field.primary_key]


@dataclass(frozen=True)
class _Statements:
    # (last_activity_at, title, visitor_name, visitor_email, session pk): the next seq after
    # the two taken
    seqs_take: str
    messages_insert: str  # (a user message's values, then a reply's): (pk, seq) of those stored


@functools.cache
def _sql() -> _Statements:
    """The opening's statements the ORM cannot say (UPDATE … RETURNING; an INSERT that skips
    a conflict and returns what went in), in raw SQL that PostgreSQL and SQLite (3.35+) read
    alike. Only names from the models' options are put in the text (quoted); every value is a
    parameter."""
    quote = connection.ops.quote_name
    session = Session._meta
    next_seq, activity, title, name, email, session_pk = (
        quote(session.get_field(name).column)
        for name in ("next_seq", "last_activity_at", "title", "visitor_name", "visitor_email", "id")
    )
    message = Message._meta
    columns = ", ".join(quote(field.column) for field in _insert_fields())
    row = "(" + ", ".join(["%s"] * len(_insert_fields())) + ")"
    return _Statements(
        seqs_take=(
            f"UPDATE {quote(session.db_table)} SET {next_seq} = {next_seq} + 2, "  # noqa: S608
            f"{activity} = %s, {title} = CASE WHEN {title} = '' THEN %s ELSE {title} END, "
            f"{name} = %s, {email} = %s WHERE {session_pk} = %s RETURNING {next_seq}"
        ),
        messages_insert=(
            f"INSERT INTO {quote(message.db_table)} ({columns}) VALUES {row}, {row} "  # noqa: S608
            f"ON CONFLICT DO NOTHING RETURNING {quote(message.pk.column)}, "
            f"{quote(message.get_field('seq').column)}"
        ),
    )


async def turn_start(*, visitor: policy.Visitor, public_id: str, content: str) -> Turn:
    """Every chat entry point's way in: the admission gate's limits, then `turn_open`, whose
    one database step looks the conversation up and checks the origin as it opens the turn.

    Raises ServerShutdown (503) while the process drains: a keep-alive connection may still
    bring a turn it would have to cut off.
    """
    if draining.draining():
        raise ServerShutdown()
    admission = await policy.turn_admit(visitor, public_id=public_id)
    try:
        return await turn_open(
            public_id=public_id, content=content, visitor=visitor, lease=admission.lease
        )
    except BaseException:
        await see_through(admission.lease.release(), "release a refused turn's lease")
        raise


async def turn_open(
    *,
    public_id: str,
    content: str,
    visitor: policy.Visitor | None = None,
    lease: limits.Lease = limits.NO_LEASE,
) -> Turn:
    """Start a turn: store the visitor's message and an empty reply in flight.

    Raises SessionNotFound (404), OriginNotAllowed (403), ReplyInFlight (409) and the like
    before anything is answered. Cancelled while the database step runs on in its thread, it
    ends the turn that step may still open.
    """
    opening = asyncio.ensure_future(
        db_step(turn_open_sync)(public_id=public_id, content=content, visitor=visitor, lease=lease)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:

        async def end_if_opened() -> None:
            try:
                turn = await opening
            except ChatKitError:
                return  # nothing was opened (409, 404…)
            await turn_end(turn)

        await see_through(end_if_opened(), "end a turn cancelled while opening")
        raise


# --- Running ---------------------------------------------------------------------------------


async def turn_events(turn: Turn, *, ping: float | None = None) -> AsyncIterator[TurnEvent]:
    """Run an opened turn, reporting its events as they happen; its reply ends stored.

    With `ping`, a `ping` event comes whenever the model has been silent that many seconds.
    A turn the server's shutdown cuts off reports ServerShutdown as its error, and its reply
    is stored `interrupted` (the model did not fail), with the text it had.
    """
    progress = Progress()
    error: llm.LLMError | ServerShutdown | None = None
    try:
        yield TurnEvent("message", message=turn.user_message)
        reader = ModelReader(turn.request, progress, ping=ping)
        try:
            while (text := await reader.next()) is not None:
                yield _PING_EVENT if text is PING else TurnEvent("delta", text=text)
        finally:
            await reader.close()  # the upstream request is closed before the reply is stored
    except (llm.LLMError, ServerShutdown) as exc:
        error = exc
    except BaseException as exc:
        await _end_cut_short(turn, progress, exc)
        raise
    if isinstance(error, ServerShutdown):
        status = Message.Status.INTERRUPTED
    else:
        status = Message.Status.ERROR if error else Message.Status.COMPLETE
    try:
        reply = await turn_end(turn, **progress.ending(status, error.code if error else ""))
    except BaseException as exc:
        await _end_cut_short(turn, progress, exc)
        raise
    yield (
        TurnEvent("error", message=reply, error=error)
        if error
        else TurnEvent("done", message=reply)
    )


_PING_EVENT = TurnEvent("ping")


async def _end_cut_short(turn: Turn, progress: Progress, exc: BaseException) -> None:
    """End the reply of a turn that `exc` cut short, whatever else happens meanwhile.

    An exception is our own failure (the database, a bug), not the model's: the reply failed,
    though the visitor may still be there. Anything else (GeneratorExit, CancelledError) is the
    consumer leaving: the reply is interrupted, with what the model had already reported.
    """
    if isinstance(exc, Exception):
        ending, what = progress.ending(Message.Status.ERROR, InternalError.code), "a failed reply"
    else:
        ending, what = progress.ending(), "an interrupted reply"
    await see_through(turn_end(turn, **ending), f"store {what}")


async def message_post(
    *, visitor: policy.Visitor, public_id: str, content: str
) -> tuple[Message, Message]:
    """Run a whole turn and return the visitor's message and the stored reply.

    Raises LLMError (after storing the failed reply) when the model fails, ServerShutdown
    when the server's shutdown cut it off.
    """
    turn = await turn_start(visitor=visitor, public_id=public_id, content=content)
    async with contextlib.aclosing(turn_events(turn)) as events:
        async for event in events:
            if event.kind == "done":
                return turn.user_message, event.message
            if event.kind == "error":
                raise event.error
    raise AssertionError("a turn ends with done or error")  # pragma: no cover


# --- Ending ------------------------------------------------------------------------------------


def turn_end_sync(
    turn: Turn, *, status: str = Message.Status.INTERRUPTED, content: str = "", **outcome: Any
) -> Message:
    """Store how a turn's reply ended, once: its text, status (by default `interrupted`: it
    ended with no outcome), usage and timings (`outcome`: model, finish_reason, prompt_tokens,
    completion_tokens, ttft_ms, duration_ms, error_code); then log it and count it.

    Only a reply still `streaming` is written: one whose conversation was deleted meanwhile,
    or that was already ended, is left as it is (and neither logged nor counted twice). One
    exception: the writer's own ending, late (its database was away for longer than its
    heartbeat), replaces the empty one another process gave it for `abandoned`, so the text is
    not lost.
    """
    reply = turn.reply
    values = stored_values(reply, status=status, content=content, **outcome)
    mine = turn.request is not None  # its writer's ending, not one found abandoned
    with transaction.atomic():
        replies = Message.objects.filter(pk=reply.pk)
        stored = replies.filter(status=Message.Status.STREAMING).update(**values)
        late = 0
        if not stored and mine and content:
            late = replies.filter(
                status=Message.Status.INTERRUPTED, error_code="abandoned", content=""
            ).update(**values)
        # Only once the write went through: a retry after a failed one starts from what it knew.
        for name, value in values.items():
            setattr(reply, name, value)
        if (stored or late) and turn.reservation is not None:
            # Ended as abandoned, it was settled for its prompt alone.
            held = turn.reservation.prompt_estimate if late else None
            budgets.budget_settle(
                reservation=turn.reservation, reply=reply, slug=turn.assistant, held=held
            )
    heartbeat.disown(reply.pk)
    if late:
        logger.info("a reply ended as abandoned got its text after all (seq %d)", reply.seq)
    if stored:
        question = turn.user_message.content if turn.user_message else None
        turn_logged(assistant=turn.assistant, reply=reply, question=question)
        metrics.turn_observe(reply, assistant=turn.assistant)
    return reply


async def turn_end(turn: Turn, **ending: Any) -> Message:
    """`turn_end_sync` from async code, as one database step; and the visitor's lease is let
    go. A write that fails (the database went away) is retried by this process, with back-off,
    until it goes through: the reply's text is not lost, and its conversation is held up
    only that long."""
    try:
        return await db_step(turn_end_sync)(turn, **ending)
    except Exception:
        heartbeat.retry_later(turn.reply.pk, functools.partial(turn_end_sync, turn, **ending))
        raise
    finally:
        await turn.lease.release()


def turn_end_blocking(turn: Turn, **ending: Any) -> Message:
    """`turn_end` for sync callers (a response Django closes in a worker thread)."""
    try:
        return turn_end_sync(turn, **ending)
    except Exception:
        heartbeat.retry_later(turn.reply.pk, functools.partial(turn_end_sync, turn, **ending))
        raise
    finally:
        async_to_sync(turn.lease.release)()

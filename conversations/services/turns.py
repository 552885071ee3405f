"""The chat turn: one pipeline for every entry point (seed `/api/chat`, v1 JSON, v1 stream).

    turn = await turn_open(session=..., content=...)   # 404, 409… before any answer starts
    async for event in turn_events(turn): ...          # message, delta…, then done | error

`turn_open` stores the visitor's message with an empty reply marked `streaming`;
`turn_events` streams the model's answer. Every way a reply ends goes through `turn_end`
(or its sync twin): `complete`; `error`, with the partial text kept, when the model fails;
`interrupted`, the default, when the turn ends with no outcome (its consumer went away, and
the upstream request was closed first; or it never ran; or the process writing it is gone:
error code `abandoned`). Each database step is a short sync function run through `db_step`,
so no connection is held while the model writes.

`turn_start` is the entry point: the admission gate (conversations.policy) first, then
`turn_open`, whose transaction reserves the reply's tokens of the assistant's daily budget;
`turn_end` settles them, releases the visitor's lease and, while this process lives, retries
a final write that failed.
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
from django.db import transaction
from django.db.models import Case, F, Max, Value, When
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
        # The reply may end any moment (and a gone writer is known within three beats).
        raise ReplyInFlight(retry_after=min(5, max(1, round(settings.CHATKIT_HEARTBEAT_SECONDS))))
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


def turn_open_sync(
    *, session: Session, content: str, lease: limits.Lease = limits.NO_LEASE
) -> Turn:
    """`turn_open`'s database step: store the visitor's message and an empty reply in flight,
    its tokens reserved of the day's budget, and gather the model's context.

    Raises ReplyInFlight, SessionNotFound, BudgetExhausted (and then stores nothing).
    """
    assistant = session.assistant
    demo = llm.mode() == "demo"
    model = llm.DEMO_MODEL if demo else assistant.model or settings.OPENAI_MODEL
    owner = heartbeat.beat_now()  # before the reply names this process as its writer
    now = timezone.now()
    reply = None
    try:
        with transaction.atomic():
            session_lock(
                session,
                last_activity_at=now,
                title=Case(When(title="", then=Value(content[:TITLE_CHARS])), default=F("title")),
            )
            # With the row locked, this check and the inserts below cannot interleave with
            # another turn's; the partial unique index on streaming replies backs it up.
            one_reply_at_a_time(session=session, now=now)
            last_seq = session.messages.aggregate(last=Max("seq"))["last"] or 0
            user_message = Message.objects.create(
                session=session, seq=last_seq + 1, role=Message.Role.USER, content=content
            )
            history = selectors.turn_context(session=session, up_to=user_message.seq)
            messages = [{"role": "system", "content": assistant.system_prompt}, *history]
            reservation = None
            if not demo:  # the demo responder spends nothing
                reservation = budgets.budget_reserve(
                    assistant=assistant,
                    max_tokens=assistant.max_output_tokens,
                    prompt=budgets.prompt_estimate(messages),
                    now=now,
                )
            reply = Message.objects.create(
                session=session,
                seq=last_seq + 2,
                role=Message.Role.ASSISTANT,
                status=Message.Status.STREAMING,
                model=model,
                owner=owner,
                reserved_tokens=reservation.tokens if reservation else None,
                reserved_prompt_tokens=reservation.prompt_estimate if reservation else None,
                reserved_on=reservation.day if reservation else None,
            )
            # Owned before anyone can see it: another turn of this process must not take it
            # for one this process left behind.
            heartbeat.own(reply.pk)
    except BudgetExhausted:
        budgets.budget_exhausted_report(assistant=assistant, now=now)
        raise
    except BaseException:
        if reply is not None:
            heartbeat.disown(reply.pk)  # it was never stored
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


async def turn_start(*, visitor: policy.Visitor, public_id: str, content: str) -> Turn:
    """Every chat entry point's way in: the admission gate, then `turn_open`.

    Raises ServerShutdown (503) while the process drains: a keep-alive connection may still
    bring a turn it would have to cut off.
    """
    if draining.draining():
        raise ServerShutdown()
    admission = await policy.turn_admit(visitor, public_id=public_id)
    try:
        return await turn_open(session=admission.session, content=content, lease=admission.lease)
    except BaseException:
        await see_through(admission.lease.release(), "release a refused turn's lease")
        raise


async def turn_open(
    *, session: Session, content: str, lease: limits.Lease = limits.NO_LEASE
) -> Turn:
    """Start a turn: store the visitor's message and an empty reply in flight.

    Raises ReplyInFlight (409) and the like before anything is answered. Cancelled while the
    database step runs on in its thread, it ends the turn that step may still open.
    """
    opening = asyncio.ensure_future(
        db_step(turn_open_sync)(session=session, content=content, lease=lease)
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

"""Writes: sessions, chat turns and feedback. Views, the admin and commands call these.

A chat turn is one pipeline for every entry point (seed `/api/chat`, v1 JSON, v1 stream):

    turn = await turn_open(session=..., content=...)   # 409 etc. before any answer starts
    async for event in turn_run(turn): ...             # message, delta..., done | error
    await turn_close(turn)                             # only if turn_run never got to start

`turn_open` stores the visitor's message with an empty reply marked `streaming`; `turn_run`
streams the model's answer and stores the reply however it ends: `complete`, `error` (the
model failed; the partial text is kept) or `interrupted` (the consumer went away; the
upstream request is closed at once). Each database step is a short sync function run through
`db_step`, so no connection is held while the model writes.
"""

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, Max, OuterRef, QuerySet, Value, When
from django.utils import timezone
from django.utils.crypto import salted_hmac

from conversations import llm, metrics, policy, selectors
from conversations.db import db_step
from conversations.exceptions import (
    AssistantNotFound,
    ChatKitError,
    InvalidInput,
    NotFound,
    ReplyInFlight,
    SessionNotFound,
)
from conversations.models import Assistant, Message, Session

logger = logging.getLogger(__name__)

TITLE_CHARS = Session._meta.get_field("title").max_length
USER_AGENT_CHARS = Session._meta.get_field("user_agent").max_length
ORIGIN_CHARS = Session._meta.get_field("origin").max_length
MODEL_CHARS = Message._meta.get_field("model").max_length
FINISH_REASON_CHARS = Message._meta.get_field("finish_reason").max_length


def ip_hash(ip: str) -> str:
    """A keyed hash of a client IP (keyed by SECRET_KEY): countable, not reversible."""
    if not ip:
        return ""
    return salted_hmac("chatkit.client-ip", ip, algorithm="sha256").hexdigest()


# --- Sessions --------------------------------------------------------------------------------


def session_start(
    *,
    assistant_slug: str | None,
    origin: str = "",
    user_agent: str = "",
    ip: str = "",
    metadata: dict[str, Any] | None = None,
) -> Session:
    """Start a conversation with an active assistant, if the origin may use it."""
    assistant = selectors.assistant_get(slug=assistant_slug)
    policy.origin_check(assistant=assistant, origin=origin)
    return Session.objects.create(
        assistant=assistant,
        origin=origin[:ORIGIN_CHARS],
        user_agent=user_agent[:USER_AGENT_CHARS],
        ip_hash=ip_hash(ip),
        metadata=metadata or {},
    )


def session_delete(*, session: Session) -> None:
    """Delete a conversation and all its messages, unless a reply is being written in it."""
    with transaction.atomic():
        _lock_session(session)
        if _reply_in_flight(session, now=timezone.now()):
            raise ReplyInFlight()
        session.delete()


def _lock_session(session: Session, **changes: Any) -> None:
    # An UPDATE takes the row lock on PostgreSQL (SQLite's IMMEDIATE transactions serialise
    # writers anyway), so turns and deletions of one session happen one at a time.
    changes = changes or {"last_activity_at": F("last_activity_at")}
    if not Session.objects.filter(pk=session.pk).update(**changes):
        raise SessionNotFound()  # deleted since it was looked up


def _reply_in_flight(session: Session, *, now: datetime) -> bool:
    """Is a reply being written now? One abandoned by a dead process is closed, not counted."""
    reply = (
        Message.objects.filter(session=session, status=Message.Status.STREAMING)
        .only("pk", "created_at")
        .first()
    )
    if reply is None:
        return False
    if reply.created_at >= selectors.abandoned_before(now):
        return True
    Message.objects.filter(pk=reply.pk, status=Message.Status.STREAMING).update(
        status=Message.Status.ERROR, error_code="abandoned"
    )
    return False


# --- Chat turns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    user_message: Message
    reply: Message
    request: llm.ReplyRequest


@dataclass(frozen=True)
class TurnEvent:
    """What a turn reports, in order: `message`, `delta`s, then `done` or `error`."""

    kind: str
    message: Message | None = None
    text: str = ""
    error: llm.LLMError | None = None


def turn_begin(*, session: Session, content: str) -> Turn:
    """Store the visitor's message and an empty reply in flight; gather the model's context.

    Raises ReplyInFlight when another reply of this session is still being written.
    """
    assistant = session.assistant
    model = llm.DEMO_MODEL if llm.mode() == "demo" else assistant.model or settings.OPENAI_MODEL
    now = timezone.now()
    with transaction.atomic():
        _lock_session(
            session,
            last_activity_at=now,
            title=Case(When(title="", then=Value(content[:TITLE_CHARS])), default=F("title")),
        )
        # With the session locked, this check and the inserts below cannot interleave with
        # another turn's; the partial unique index on streaming replies backs it up.
        if _reply_in_flight(session, now=now):
            raise ReplyInFlight()
        last_seq = session.messages.aggregate(last=Max("seq"))["last"] or 0
        user_message = Message.objects.create(
            session=session, seq=last_seq + 1, role=Message.Role.USER, content=content
        )
        reply = Message.objects.create(
            session=session,
            seq=last_seq + 2,
            role=Message.Role.ASSISTANT,
            status=Message.Status.STREAMING,
            model=model,
        )
        # The last N messages, this one included; failed replies with no text are noise.
        recent = (
            session.messages.filter(seq__lte=user_message.seq)
            .exclude(role=Message.Role.ASSISTANT, content="")
            .order_by("-seq")
            .values_list("role", "content")[: assistant.context_messages]
        )
        history = [{"role": role, "content": text} for role, text in reversed(recent)]
    request = llm.ReplyRequest(
        model=model,
        messages=[{"role": "system", "content": assistant.system_prompt}, *history],
        temperature=assistant.temperature,
        max_tokens=assistant.max_output_tokens,
    )
    return Turn(user_message=user_message, reply=reply, request=request)


def reply_finish(
    turn: Turn,
    *,
    content: str,
    status: str,
    model: str = "",
    finish_reason: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
    error_code: str = "",
) -> Message:
    """Store how a turn's reply ended: its text, status, usage and timings; log and count it.

    Only a reply still `streaming` is written: one whose conversation was deleted meanwhile,
    or that was already ended, is left as it is (and neither logged nor counted twice).
    """
    reply = turn.reply
    values = {
        "content": content,
        "status": status,
        # What the upstream reports is cut to fit: a long model name must not fail the write.
        "model": (model or reply.model)[:MODEL_CHARS],
        "finish_reason": finish_reason[:FINISH_REASON_CHARS],
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "ttft_ms": ttft_ms,
        "duration_ms": duration_ms,
        "error_code": error_code,
    }
    stored = Message.objects.filter(pk=reply.pk, status=Message.Status.STREAMING).update(**values)
    # Only once the write went through: a retry after a failed one starts from what it knew.
    for field, value in values.items():
        setattr(reply, field, value)
    if not stored:
        logger.debug("reply %s had already ended or was deleted; left as it was", reply.pk)
        return reply
    _turn_log(turn)
    metrics.turn_observe(reply, assistant=turn.user_message.session.assistant.slug)
    return reply


def _turn_log(turn: Turn) -> None:
    """One line per turn: numbers, and the conversation's database id, never its secret id.

    What people wrote is logged only with CHATKIT_LOG_CONTENT=true.
    """
    reply = turn.reply
    fields: dict[str, Any] = {
        "assistant": turn.user_message.session.assistant.slug,
        "session": reply.session_id,
        "seq": reply.seq,
        "status": reply.status,
        "model": reply.model,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "ttft_ms": reply.ttft_ms,
        "duration_ms": reply.duration_ms,
        "error": reply.error_code or None,
    }
    if settings.CHATKIT_LOG_CONTENT:
        fields["question"] = turn.user_message.content
        fields["reply"] = reply.content
    text = " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items())
    logger.info("turn ended: %s", text, extra={"turn": fields})


_BARE = re.compile(r"[\w.:/@+-]*")


def _logfmt(value: Any) -> str:
    """A value as logfmt writes it: bare when it can be, else quoted as JSON."""
    if value is None:
        return "-"
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


# Clean-ups that must finish even when the task that started them is cancelled (again):
# the loop keeps only weak references to tasks, so they are held here until done.
_cleanups: set[asyncio.Task] = set()


async def _see_through(work: Awaitable[Any], what: str) -> None:
    """Await `work` to its end whatever happens to the caller; a failure is logged, not raised.

    Used where a turn is being abandoned: a second cancellation, or a database error in the
    clean-up, must neither leave a reply `streaming` unnoticed nor hide the cancellation.
    """

    async def logged() -> None:
        try:
            await work
        except Exception:
            logger.exception("could not %s", what)

    task = asyncio.ensure_future(logged())
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)
    await asyncio.shield(task)


async def turn_open(*, session: Session, content: str) -> Turn:
    """Start a turn: store the visitor's message and an empty reply in flight.

    Raises ReplyInFlight (409) and the like before anything is answered. Cancelled while the
    database step runs on in its thread, it closes the turn that step may still open.
    """
    opening = asyncio.ensure_future(db_step(turn_begin)(session=session, content=content))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:

        async def close_if_opened() -> None:
            try:
                turn = await opening
            except ChatKitError:
                return  # nothing was opened (409, 404…)
            await turn_close(turn)

        await _see_through(close_if_opened(), "close a turn cancelled while opening")
        raise


async def turn_close(turn: Turn) -> None:
    """End a turn whose reply is still in flight as `interrupted`; a no-op once it ended."""
    await db_step(reply_finish)(turn, content="", status=Message.Status.INTERRUPTED)


async def turn_run(turn: Turn) -> AsyncIterator[TurnEvent]:
    """Run an opened turn, reporting its events as they happen, and store how it ended."""
    started = time.monotonic()
    parts: list[str] = []
    ttft_ms: int | None = None
    finish: llm.Finish | None = None
    stored = False

    def so_far(status: str, error_code: str = "") -> dict[str, Any]:
        """The reply as far as it got: its text, timings, and usage once the model sent it."""
        usage = {}
        if finish is not None:
            usage = {
                "model": finish.model,
                "finish_reason": finish.finish_reason,
                "prompt_tokens": finish.prompt_tokens,
                "completion_tokens": finish.completion_tokens,
            }
        return {
            "content": "".join(parts),
            "status": status,
            "ttft_ms": ttft_ms,
            "duration_ms": round((time.monotonic() - started) * 1000),
            "error_code": error_code,
            **usage,
        }

    try:
        yield TurnEvent("message", message=turn.user_message)
        # Wall-clock deadlines on the model call: the first token must come within
        # OPENAI_FIRST_TOKEN_TIMEOUT, and a model that keeps writing, or keeps a connection
        # alive without writing, must not hold the conversation past CHATKIT_REPLY_TIMEOUT.
        # They wrap each read only, never a `yield`, so they cancel nothing but the read.
        now = asyncio.get_running_loop().time()
        deadline = now + settings.CHATKIT_REPLY_TIMEOUT
        first_token_deadline = min(deadline, now + settings.OPENAI_FIRST_TOKEN_TIMEOUT)
        async with contextlib.aclosing(llm.stream_reply(turn.request)) as chunks:
            while finish is None:
                waiting_for_first = ttft_ms is None
                try:
                    async with asyncio.timeout_at(
                        first_token_deadline if waiting_for_first else deadline
                    ):
                        chunk = await anext(chunks)
                except TimeoutError:
                    if waiting_for_first and first_token_deadline < deadline:
                        raise llm.LLMError(
                            "first_token_timeout",
                            "The model took too long to start answering.",
                            status=504,
                        ) from None
                    raise llm.LLMError(
                        "reply_timeout", "The reply took too long and was cut off.", status=504
                    ) from None
                if isinstance(chunk, llm.Finish):
                    finish = chunk
                    continue
                if ttft_ms is None:
                    ttft_ms = round((time.monotonic() - started) * 1000)
                parts.append(chunk.text)
                yield TurnEvent("delta", text=chunk.text)
        reply = await db_step(reply_finish)(turn, **so_far(Message.Status.COMPLETE))
        stored = True
        yield TurnEvent("done", message=reply)
    except llm.LLMError as exc:
        reply = await db_step(reply_finish)(turn, **so_far(Message.Status.ERROR, exc.code))
        stored = True
        yield TurnEvent("error", message=reply, error=exc)
    except Exception:
        # Our own failure (the database, a bug), not the model's: the reply failed, though
        # the visitor may still be there; the caller tells them.
        stored = True
        await _see_through(
            db_step(reply_finish)(turn, **so_far(Message.Status.ERROR, "internal_error")),
            "store a failed reply",
        )
        raise
    finally:
        if not stored:
            # The consumer left: it closed the generator, or its task was cancelled. What the
            # model already reported (usage, once it finished) is kept.
            await _see_through(
                db_step(reply_finish)(turn, **so_far(Message.Status.INTERRUPTED)),
                "store an interrupted reply",
            )


async def message_post(*, session: Session, content: str) -> tuple[Message, Message]:
    """Run a whole turn and return the visitor's message and the stored reply.

    Raises LLMError (after storing the failed reply) when the model fails.
    """
    turn = await turn_open(session=session, content=content)
    async with contextlib.aclosing(turn_run(turn)) as events:
        async for event in events:
            if event.kind == "done":
                return turn.user_message, event.message
            if event.kind == "error":
                raise event.error
    raise AssertionError("a turn ends with done or error")  # pragma: no cover


# --- Feedback --------------------------------------------------------------------------------


def message_feedback_set(
    *, session: Session, seq: int, rating: str | None, comment: str = ""
) -> Message:
    """Record (or with `rating=None`, clear) the visitor's rating of a reply."""
    message = session.messages.filter(seq=seq).first()
    if message is None:
        raise NotFound("Message not found.")
    if message.role != Message.Role.ASSISTANT:
        raise InvalidInput("Feedback applies to the assistant's replies only.")
    if message.status == Message.Status.STREAMING:
        raise ReplyInFlight("This reply is still being written.")
    message.feedback_rating = rating or ""
    message.feedback_comment = comment if rating else ""
    message.save(update_fields=["feedback_rating", "feedback_comment"])
    return message


# --- Retention -------------------------------------------------------------------------------

PURGE_BATCH_SIZE = 1000
# A batch's ids travel as query parameters and its rows stay locked until it commits.
PURGE_MAX_BATCH_SIZE = 10_000


@dataclass
class PurgeReport:
    """What a purge, or one batch of it, deleted (with `dry_run`: would delete)."""

    cutoff: datetime
    dry_run: bool = False
    batches: int = 0
    sessions: int = 0
    messages: int = 0
    # Idle conversations kept because a reply is being written in them.
    in_flight: int = 0

    def add(self, batch: "PurgeReport") -> None:
        self.batches += 1
        self.sessions += batch.sessions
        self.messages += batch.messages
        self.in_flight += batch.in_flight


def session_purge(
    *,
    older_than: timedelta,
    assistant_slug: str | None = None,
    batch_size: int = PURGE_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
    on_batch: Callable[[PurgeReport, PurgeReport], None] | None = None,
) -> PurgeReport:
    """Delete conversations idle for longer than `older_than`, with their messages, in batches.

    Each batch is one short transaction and no message is loaded into memory, so a purge of
    millions holds no lock for long and runs in flat memory. A conversation with a reply in
    flight is kept and counted; a reply abandoned by a dead process does not count as in
    flight, and goes with its conversation. `on_batch(batch, total)` follows the progress.
    """
    if older_than <= timedelta(0):
        raise InvalidInput("The age must be more than zero.")
    if not 1 <= batch_size <= PURGE_MAX_BATCH_SIZE:
        raise InvalidInput(f"The batch size must be between 1 and {PURGE_MAX_BATCH_SIZE}.")
    now = now or timezone.now()
    try:
        cutoff = now - older_than
    except OverflowError:
        raise InvalidInput("The age is too large.") from None
    idle = Session.objects.filter(last_activity_at__lt=cutoff)
    if assistant_slug is not None:
        assistant = Assistant.objects.filter(slug=assistant_slug).first()
        if assistant is None:
            raise AssistantNotFound(f"There is no assistant with the slug {assistant_slug!r}.")
        idle = idle.filter(assistant=assistant)
    reply_in_flight = Exists(selectors.replies_in_flight(now=now).filter(session=OuterRef("pk")))
    total = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    last_pk = 0
    while True:
        # Keyset pagination: each batch starts after the last id seen, so conversations kept
        # for a reply in flight (or in a dry run, all of them) are not seen twice.
        ids = list(
            idle.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        last_pk = ids[-1]
        batch = _purge_batch(
            idle, ids, cutoff=cutoff, reply_in_flight=reply_in_flight, dry_run=dry_run
        )
        total.add(batch)
        if on_batch is not None:
            on_batch(batch, total)
    logger.info(
        "purge%s: cutoff=%s sessions=%s messages=%s in_flight=%s batches=%s",
        " (dry run)" if dry_run else "",
        cutoff.isoformat(),
        total.sessions,
        total.messages,
        total.in_flight,
        total.batches,
    )
    return total


def _purge_batch(
    idle: QuerySet[Session],
    ids: list[int],
    *,
    cutoff: datetime,
    reply_in_flight: Exists,
    dry_run: bool,
) -> PurgeReport:
    """Delete one batch of idle conversations (by id) and their messages, in one transaction."""
    batch = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    rows = (
        idle.filter(pk__in=ids)
        .annotate(busy=reply_in_flight)
        .order_by("pk")  # one lock order for every purge, and no sort by the model's ordering
        .values_list("pk", "busy")
    )
    if dry_run:
        rows = list(rows)
        doomed = [pk for pk, busy in rows if not busy]
        batch.in_flight = len(rows) - len(doomed)
        batch.sessions = len(doomed)
        batch.messages = Message.objects.filter(session_id__in=doomed).count()
        return batch
    with transaction.atomic():
        # Lock the batch: a turn starting now waits, then finds its conversation gone. One that
        # began meanwhile made its conversation active again, and the cutoff, re-checked on the
        # locked row (and again in the DELETEs), keeps it.
        rows = list(rows.select_for_update())
        doomed = [pk for pk, busy in rows if not busy]
        batch.in_flight = len(rows) - len(doomed)
        if not doomed:
            return batch
        gone = idle.filter(pk__in=doomed)
        # Raw deletes: Django's cascade would first load every message row into memory.
        batch.messages = Message.objects.filter(session__in=gone.values("pk"))._raw_delete(gone.db)
        batch.sessions = gone._raw_delete(gone.db)
    return batch

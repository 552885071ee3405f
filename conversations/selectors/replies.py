"""Replies in flight: the one-reply-at-a-time rule, and what the model sees with a turn."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from conversations import heartbeat
from conversations.models import Message, ProcessHeartbeat, Session

# Margin for the database steps around a turn's model call, which its deadline leaves out.
ABANDONED_MARGIN = timedelta(seconds=60)


def abandoned_before(now: datetime) -> datetime:
    """Replies still `streaming` from before this were left by a process that died.

    A live turn ends its reply within CHATKIT_REPLY_TIMEOUT (a wall-clock deadline on the whole
    model call, retries included), so only a dead one gets this old. (Most are known to be
    abandoned much sooner: their owner stopped beating.)
    """
    return now - timedelta(seconds=settings.CHATKIT_REPLY_TIMEOUT) - ABANDONED_MARGIN


def _owner_beating(now: datetime) -> Exists:
    return Exists(
        ProcessHeartbeat.objects.filter(
            process=OuterRef("owner"), beat_at__gte=heartbeat.alive_since(now)
        )
    )


def replies_in_flight(*, now: datetime | None = None) -> QuerySet[Message]:
    """Replies being written now: `streaming`, by a process that still beats or stored the
    reply moments ago (or, for a reply stored before replies named their owner, one younger
    than the reply timeout); of those naming this process, the ones it still writes.
    (`reply_abandoned`'s rules, for many replies at once.)"""
    now = now or timezone.now()
    mine = heartbeat.process_id()
    return Message.objects.filter(
        Q(owner=mine, pk__in=heartbeat.writing())
        | (
            ~Q(owner=mine)
            & (Q(owner="") | Q(created_at__gte=heartbeat.alive_since(now)) | _owner_beating(now))
        ),
        status=Message.Status.STREAMING,
        created_at__gte=abandoned_before(now),
    )


def reply_streaming(*, session: Session) -> Message | None:
    """The conversation's reply marked `streaming`, if any (in flight, or abandoned)."""
    return (
        Message.objects.filter(session=session, status=Message.Status.STREAMING)
        .only(
            "pk",
            "session",
            "seq",
            "created_at",
            "model",
            "owner",
            "reserved_tokens",
            "reserved_prompt_tokens",
            "reserved_on",
        )
        .first()
    )


def reply_abandoned(reply: Message, *, now: datetime) -> bool:
    """Was this `streaming` reply left by a process that is gone? (`replies_in_flight`'s
    rule; and one that this process names as its own but no longer writes.)"""
    if reply.created_at < abandoned_before(now):
        return True
    if not reply.owner:
        return False
    if reply.owner == heartbeat.process_id():
        return not heartbeat.owns(reply.pk)
    if reply.created_at >= heartbeat.alive_since(now):
        return False  # its owner was alive when it stored it, moments ago
    return not ProcessHeartbeat.objects.filter(
        process=reply.owner, beat_at__gte=heartbeat.alive_since(now)
    ).exists()


def turn_context(*, session: Session, before: int, question: str) -> list[dict[str, str]]:
    """The messages the model sees with a turn: the assistant's last N, the visitor's
    `question` (not stored yet: it takes seq `before`) the last of them.

    Failed replies with no text are left out: noise to the model.
    """
    recent = (
        session.messages.filter(seq__lt=before)
        .exclude(role=Message.Role.ASSISTANT, content="")
        .order_by("-seq")
        .values_list("role", "content")[: session.assistant.context_messages - 1]
    )
    history = [{"role": role, "content": text} for role, text in reversed(recent)]
    return [*history, {"role": Message.Role.USER.value, "content": question}]

"""Replies in flight: the one-reply-at-a-time rule, and what the model sees with a turn."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from conversations.models import Message, Session

# Margin for the database steps around a turn's model call, which its deadline leaves out.
ABANDONED_MARGIN = timedelta(seconds=60)


def abandoned_before(now: datetime) -> datetime:
    """Replies still `streaming` from before this were left by a process that died.

    A live turn ends its reply within CHATKIT_REPLY_TIMEOUT (a wall-clock deadline on the whole
    model call, retries included), so only a dead one gets this old.
    """
    return now - timedelta(seconds=settings.CHATKIT_REPLY_TIMEOUT) - ABANDONED_MARGIN


def replies_in_flight(*, now: datetime | None = None) -> QuerySet[Message]:
    """Replies being written now: `streaming`, and not abandoned by a process that died."""
    return Message.objects.filter(
        status=Message.Status.STREAMING,
        created_at__gte=abandoned_before(now or timezone.now()),
    )


def reply_streaming(*, session: Session) -> Message | None:
    """The conversation's reply marked `streaming`, if any (in flight, or abandoned)."""
    return (
        Message.objects.filter(session=session, status=Message.Status.STREAMING)
        .only("pk", "session", "seq", "created_at", "model")
        .first()
    )


def reply_abandoned(reply: Message, *, now: datetime) -> bool:
    """Was this `streaming` reply left by a process that died? (`replies_in_flight`'s rule.)"""
    return reply.created_at < abandoned_before(now)


def turn_context(*, session: Session, up_to: int) -> list[dict[str, str]]:
    """The messages the model sees with a turn: the assistant's last N, up to seq `up_to`.

    Failed replies with no text are left out: noise to the model.
    """
    recent = (
        session.messages.filter(seq__lte=up_to)
        .exclude(role=Message.Role.ASSISTANT, content="")
        .order_by("-seq")
        .values_list("role", "content")[: session.assistant.context_messages]
    )
    return [{"role": role, "content": text} for role, text in reversed(recent)]

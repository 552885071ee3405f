"""Reads: assistants, sessions and pages of messages."""

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from conversations import llm, policy
from conversations.exceptions import AssistantNotFound, SessionNotFound
from conversations.ids import SESSION_ID
from conversations.models import Assistant, Message, Session

DEFAULT_ASSISTANT = "default"
PAGE_SIZE = 50
_SESSION_ID = re.compile(SESSION_ID)


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


def assistant_get(*, slug: str | None = None) -> Assistant:
    """An active assistant by slug (the `default` one when no slug is given)."""
    try:
        return Assistant.objects.get(slug=slug or DEFAULT_ASSISTANT, is_active=True)
    except Assistant.DoesNotExist:
        raise AssistantNotFound() from None


def assistant_widget_config(*, slug: str) -> dict:
    """What the widget may know of an assistant: nothing secret (no prompt, no model)."""
    assistant = assistant_get(slug=slug)
    # Stored values are validated, but one written past the validators must not break pages.
    prompts = assistant.starter_prompts if isinstance(assistant.starter_prompts, list) else []
    return {
        "slug": assistant.slug,
        "name": assistant.name,
        "greeting": assistant.greeting,
        "starter_prompts": [p for p in prompts if isinstance(p, str) and p.strip()],
        "accent_color": assistant.accent_color,
        "max_message_chars": settings.CHATKIT_MAX_MESSAGE_CHARS,
        "mode": llm.mode(),
        "notice": assistant.notice,
        "privacy_url": assistant.privacy_url,
        "retention_days": settings.CHATKIT_RETENTION_DAYS,
    }


def session_get(*, public_id: str) -> Session:
    """A session by its public id; unknown and malformed ids are both not found."""
    if not isinstance(public_id, str) or not _SESSION_ID.fullmatch(public_id):
        raise SessionNotFound()
    try:
        return Session.objects.select_related("assistant").get(public_id=public_id)
    except Session.DoesNotExist:
        raise SessionNotFound() from None


def session_for_visitor(*, public_id: str, origin: str) -> Session:
    """The session a visitor names, if the page they are on may use its assistant."""
    session = session_get(public_id=public_id)
    policy.origin_check(assistant=session.assistant, origin=origin)
    return session


def session_messages_page(
    *, session: Session, before: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[Message], bool]:
    """The newest `size` messages (older than `before`), oldest first, and whether more exist."""
    messages = session.messages.order_by("-seq")
    if before is not None:
        messages = messages.filter(seq__lt=before)
    page = list(messages[: size + 1])
    return page[:size][::-1], len(page) > size

"""Test data: assistants, conversations and their messages, as a test names them.

Plain functions rather than a factory library: the models are few, and a test reads best when
it says what it needs (`conversation(assistant, visitor("Hi"), reply("Hello"), idle=40 * DAY)`).
"""

from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from conversations.models import Assistant, Message, Session


def assistant_build(*, slug: str = "shop", **fields) -> Assistant:
    """An assistant, not saved (a test saves it, or checks what saving it does)."""
    return Assistant(slug=slug, name=fields.pop("name", slug.title()), **{
        "system_prompt": "Help.", **fields
    })  # fmt: skip


def visitor(content: str = "Hello", **fields) -> dict:
    """A visitor's message, for `conversation()`."""
    return {"role": Message.Role.USER, "content": content, **fields}


def reply(content: str = "Hi there", **fields) -> dict:
    """An assistant's reply, for `conversation()`."""
    return {"role": Message.Role.ASSISTANT, "content": content, **fields}


def conversation(
    assistant: Assistant,
    *messages: dict,
    at: datetime | None = None,
    idle: timedelta | None = None,
    **fields,
) -> Session:
    """A conversation with `messages` numbered from 1.

    `at`: when it and its messages were created (default: now); `idle`: how long ago its
    last activity was.
    """
    session = Session.objects.create(assistant=assistant, next_seq=len(messages) + 1, **fields)
    Message.objects.bulk_create(
        Message(session=session, seq=seq, **message) for seq, message in enumerate(messages, 1)
    )
    # created_at and last_activity_at are set on creation: changed afterwards.
    if at is not None:
        Session.objects.filter(pk=session.pk).update(created_at=at, last_activity_at=at)
        Message.objects.filter(session=session).update(created_at=at)
    if idle is not None:
        Session.objects.filter(pk=session.pk).update(last_activity_at=timezone.now() - idle)
    session.refresh_from_db()
    return session


def messages_add(session: Session, count: int, *, start: int = 1) -> list[Message]:
    """`count` messages, "message N", visitor and complete reply in turn, from seq `start`."""
    added = Message.objects.bulk_create(
        Message(
            session=session,
            seq=seq,
            role=Message.Role.USER if seq % 2 else Message.Role.ASSISTANT,
            content=f"message {seq}",
        )
        for seq in range(start, start + count)
    )
    next_seq_catch_up(session)
    return added


def reply_streaming(
    session: Session, *, started_ago: timedelta = timedelta(0), owner: str = ""
) -> Message:
    """A reply still marked `streaming` (being written, or left by a dead process), written by
    the process `owner` (none: a reply stored before replies named their writer)."""
    seq = session.messages.count() + 1
    reply = Message.objects.create(
        session=session,
        seq=seq,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        owner=owner,
    )
    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - started_ago)
    reply.refresh_from_db()
    next_seq_catch_up(session)
    return reply


def next_seq_catch_up(session: Session) -> None:
    """After messages stored by hand: the conversation's next seq follows its last one, as
    turns keep it (`Session.next_seq`)."""
    last = session.messages.aggregate(last=Max("seq"))["last"] or 0
    Session.objects.filter(pk=session.pk).update(next_seq=last + 1)
    session.next_seq = last + 1


def idle_conversation(
    assistant: Assistant, idle: timedelta, *, messages: int = 2, now: datetime | None = None
) -> Session:
    """A conversation whose last activity was `idle` before `now`, with `messages` messages."""
    session = Session.objects.create(assistant=assistant)
    Session.objects.filter(pk=session.pk).update(last_activity_at=(now or timezone.now()) - idle)
    messages_add(session, messages)
    return session

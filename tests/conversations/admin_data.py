"""Conversations for the admin's tests: messages with the fields a test names, at a given time."""

from datetime import datetime

from django.contrib.auth.models import Group

from conversations.models import Assistant, Message, Session

REVIEWERS = "Conversation reviewers"


def visitor(content: str = "Hello", **fields) -> dict:
    return {"role": Message.Role.USER, "content": content, **fields}


def reply(content: str = "Hi there", **fields) -> dict:
    return {"role": Message.Role.ASSISTANT, "content": content, **fields}


def conversation(
    assistant: Assistant, *messages: dict, at: datetime | None = None, **fields
) -> Session:
    """A session with `messages` numbered from 1, all created `at` (default: now)."""
    session = Session.objects.create(assistant=assistant, **fields)
    Message.objects.bulk_create(
        Message(session=session, seq=seq, **message) for seq, message in enumerate(messages, 1)
    )
    if at is not None:
        # created_at is auto_now_add: set afterwards.
        Session.objects.filter(pk=session.pk).update(created_at=at, last_activity_at=at)
        Message.objects.filter(session=session).update(created_at=at)
        session.refresh_from_db()
    return session


def staff_member(django_user_model, name: str, *, groups: list[str] = (), **fields):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw", **fields)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user

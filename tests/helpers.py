"""Small helpers for building test data and calling the API."""

from django.test import Client

from conversations.models import Message, Session


def add_messages(session: Session, count: int, *, start: int = 1) -> list[Message]:
    """Fill a session with alternating visitor messages and complete replies."""
    return Message.objects.bulk_create(
        Message(
            session=session,
            seq=seq,
            role=Message.Role.USER if seq % 2 else Message.Role.ASSISTANT,
            content=f"message {seq}",
        )
        for seq in range(start, start + count)
    )


def post_json(client: Client, path: str, body=None, **extra):
    return client.post(
        path, body if body is not None else {}, content_type="application/json", **extra
    )

"""Conversations as a visitor reaches them: by public id, a page of messages at a time."""

import re

from conversations.exceptions import SessionNotFound
from conversations.ids import SESSION_ID
from conversations.models import Message, Session

PAGE_SIZE = 50
_SESSION_ID = re.compile(SESSION_ID)


def session_get(*, public_id: str) -> Session:
    """A session by its public id; unknown and malformed ids are both not found."""
    if not isinstance(public_id, str) or not _SESSION_ID.fullmatch(public_id):
        raise SessionNotFound()
    try:
        return Session.objects.select_related("assistant").get(public_id=public_id)
    except Session.DoesNotExist:
        raise SessionNotFound() from None


def session_messages_page(
    *, session: Session, before: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[Message], bool]:
    """The newest `size` messages (older than `before`), oldest first, and whether more exist."""
    messages = session.messages.order_by("-seq")
    if before is not None:
        messages = messages.filter(seq__lt=before)
    page = list(messages[: size + 1])
    return page[:size][::-1], len(page) > size

"""Conversations as a visitor reaches them: by public id, a page of messages at a time; a
signed-in visitor's, a page of conversations at a time."""

import base64
import binascii
import re
from datetime import datetime

from django.db.models import Q

from conversations.exceptions import NotFound, SessionNotFound
from conversations.ids import SESSION_ID
from conversations.models import Assistant, Message, Session

PAGE_SIZE = 50
VISITOR_SESSIONS_PAGE_SIZE = 20
_SESSION_ID = re.compile(SESSION_ID)


def session_get(*, public_id: str, visitor_sub: str | None = None) -> Session:
    """A session by its public id; unknown and malformed ids are both not found.

    With `visitor_sub`, only an anonymous conversation or that signed-in visitor's ("": only
    anonymous ones): anyone else's is not found either, in the same one query.
    """
    if not isinstance(public_id, str) or not _SESSION_ID.fullmatch(public_id):
        raise SessionNotFound()
    sessions = Session.objects.select_related("assistant")
    if visitor_sub is not None:
        sessions = sessions.filter(visitor_sub__in=sorted({"", visitor_sub}))
    try:
        return sessions.get(public_id=public_id)
    except Session.DoesNotExist:
        raise SessionNotFound() from None


def visitor_sessions_page(
    *,
    assistant: Assistant,
    visitor_sub: str,
    cursor: str | None = None,
    size: int = VISITOR_SESSIONS_PAGE_SIZE,
) -> tuple[list[Session], str | None]:
    """A signed-in visitor's conversations with an assistant, newest activity first, `size`
    at a time from `cursor` (keyset paging: a page stays right while conversations are
    added); returns the page and the next page's cursor (None: no more)."""
    sessions = Session.objects.filter(assistant=assistant, visitor_sub=visitor_sub).order_by(
        "-last_activity_at", "-pk"
    )
    if cursor is not None:
        activity, pk = cursor_decode(cursor)
        sessions = sessions.filter(
            Q(last_activity_at__lt=activity) | Q(last_activity_at=activity, pk__lt=pk)
        )
    page = list(sessions[: size + 1])
    more = len(page) > size
    page = page[:size]
    return page, cursor_encode(page[-1]) if more else None


def cursor_encode(session: Session) -> str:
    """The opaque cursor of the page after this conversation: its last activity and id."""
    raw = f"{session.last_activity_at.isoformat()}|{session.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    """A cursor's last activity and id. Raises NotFound for one not made here: like a
    malformed conversation id, it names no page there is."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        activity, pk = raw.split("|")
        when = datetime.fromisoformat(activity)
        if when.tzinfo is None or not pk.isdigit() or len(pk) > 18:
            raise ValueError(cursor)
        return when, int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise NotFound("No such page: a cursor is the `next` of a page, as given.") from None


def session_messages_page(
    *, session: Session, before: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[Message], bool]:
    """The newest `size` messages (older than `before`), oldest first, and whether more exist."""
    messages = session.messages.order_by("-seq")
    if before is not None:
        messages = messages.filter(seq__lt=before)
    page = list(messages[: size + 1])
    return page[:size][::-1], len(page) > size

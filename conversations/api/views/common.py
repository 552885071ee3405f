"""What the API's views share: input validation, the time format, a visitor's session."""

from django.utils import timezone

from conversations import policy, selectors
from conversations.api import serializers as s
from conversations.models import Session

# On every answer that carries a conversation's text: no browser or proxy keeps a copy (a
# shared computer's cache, a CDN told to cache the API) of what a visitor wrote.
NO_STORE = {"Cache-Control": "no-store"}


def now_iso() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def session_for(request, public_id: str) -> Session:
    """The session a request names, if its page may use the session's assistant."""
    return policy.session_reachable(policy.Visitor.of(request), public_id)


def session_body(session: Session, *, before: int | None = None, new: bool = False) -> dict:
    """A session as v1 shows it, with its newest page of messages (none for a new one)."""
    messages, has_more = (
        ([], False) if new else selectors.session_messages_page(session=session, before=before)
    )
    return s.SessionSerializer(
        {
            "id": session.public_id,
            "assistant": session.assistant.slug,
            "created_at": session.created_at,
            "messages": messages,
            "has_more": has_more,
        }
    ).data

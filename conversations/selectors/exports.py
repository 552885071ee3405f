"""Conversations read for staff exports, a batch at a time."""

from collections import defaultdict

from django.db.models import QuerySet

from conversations.models import Message, Session


def conversations_batch(
    sessions: QuerySet[Session], *, after: int, size: int
) -> list[tuple[Session, list[Message]]]:
    """The next `size` conversations past pk `after`, in pk order, with their messages in
    order: two queries, whatever they hold (keyset pagination: batch n costs what batch 1 does,
    and conversations deleted meanwhile are simply not there)."""
    page = list(sessions.filter(pk__gt=after).select_related("assistant").order_by("pk")[:size])
    if not page:
        return []
    by_session: dict[int, list[Message]] = defaultdict(list)
    for message in Message.objects.filter(session__in=[s.pk for s in page]).order_by(
        "session_id", "seq"
    ):
        by_session[message.session_id].append(message)
    return [(session, by_session[session.pk]) for session in page]

"""Conversations (the `Session` model): start one, delete one or many."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations import identity, policy, selectors
from conversations.db import db_step
from conversations.exceptions import AssistantNotFound, ReplyInFlight, SessionNotFound
from conversations.models import Assistant, Session
from conversations.services.turns import one_reply_at_a_time, session_lock

USER_AGENT_CHARS = Session._meta.get_field("user_agent").max_length
ORIGIN_CHARS = Session._meta.get_field("origin").max_length


def session_create(
    *,
    assistant: Assistant,
    visitor: policy.Visitor,
    metadata: dict[str, Any] | None = None,
    owner: identity.Identity | None = None,
) -> Session:
    """Store a new conversation (its visitor admitted already: `session_start`); with
    `owner`, it belongs to that signed-in visitor."""
    return Session.objects.create(
        assistant=assistant,
        origin=visitor.origin[:ORIGIN_CHARS],
        user_agent=visitor.user_agent[:USER_AGENT_CHARS],
        ip_hash=visitor.ip_hash,
        metadata=metadata or {},
        visitor_sub=owner.sub if owner else "",
        visitor_name=owner.name if owner else "",
        visitor_email=owner.email if owner else "",
    )


async def session_start(
    *,
    visitor: policy.Visitor,
    assistant_slug: str | None,
    metadata: dict[str, Any] | None = None,
) -> Session:
    """Start a conversation with an active assistant, once the gate has let the visitor in:
    one database step looks the assistant up, checks the visitor's origin and stores it.

    Raises SimpleRequestRefused (415), RateLimited (429), AssistantNotFound (404),
    OriginNotAllowed (403), TokenRequired, TokenInvalid, TokenExpired (401)."""
    await policy.session_admit(visitor)
    return await db_step(session_open)(
        visitor=visitor, assistant_slug=assistant_slug, metadata=metadata
    )


def session_open(
    *, visitor: policy.Visitor, assistant_slug: str | None, metadata: dict[str, Any] | None
) -> Session:
    """`session_start`'s database step."""
    assistant = selectors.assistant_get(slug=assistant_slug)
    policy.session_origin_check(visitor, assistant)
    owner = policy.visitor_identity(visitor, assistant)
    return session_create(assistant=assistant, visitor=visitor, metadata=metadata, owner=owner)


def session_delete(*, session: Session) -> None:
    """Delete a conversation and all its messages, unless a reply is being written in it."""
    with transaction.atomic():
        session_lock(session)
        one_reply_at_a_time(session=session, now=timezone.now())
        session.delete()


@dataclass
class DeleteReport:
    """What `session_delete_many` did with each conversation it was given: its public id, as
    given, or its database id for a `Session` given."""

    deleted: list[Any] = field(default_factory=list)
    not_found: list[Any] = field(default_factory=list)
    in_flight: list[Any] = field(default_factory=list)
    # The database ids of those deleted, whatever was given: what the audit log names them by.
    deleted_ids: list[int] = field(default_factory=list)


def session_delete_many(*, sessions: Iterable[Session | str]) -> DeleteReport:
    """Delete conversations (or public ids) one by one, as `session_delete` does.

    Each lands in the report once: deleted, not found (never existed, or deleted meanwhile),
    or kept because a reply is being written in it. `sessions` may be an iterator over
    millions: the report keeps ids only.
    """
    report = DeleteReport()
    seen = set()
    for given in sessions:
        known = isinstance(given, Session)
        key = given.pk if known else given
        if key in seen:
            continue
        seen.add(key)
        try:
            session = given if known else selectors.session_get(public_id=given)
            pk = session.pk  # deleting the row sets it to None
            session_delete(session=session)
        except SessionNotFound:
            report.not_found.append(key)
        except ReplyInFlight:
            report.in_flight.append(key)
        else:
            report.deleted.append(key)
            report.deleted_ids.append(pk)
    return report


def visitor_sessions_delete(*, visitor_sub: str, assistant_slug: str | None = None) -> DeleteReport:
    """Erase every conversation of one signed-in visitor (a data-subject request), with one
    assistant or all, one by one as `session_delete_many` does. Raises AssistantNotFound for
    an unknown slug (an inactive assistant's conversations are erased too)."""
    sessions = Session.objects.filter(visitor_sub=visitor_sub)
    if assistant_slug is not None:
        if not Assistant.objects.filter(slug=assistant_slug).exists():
            raise AssistantNotFound()
        sessions = sessions.filter(assistant__slug=assistant_slug)
    # Read at once (one person's conversations are few): SQLite does not isolate a cursor
    # still being read from the deletions made meanwhile on the same connection.
    return session_delete_many(sessions=list(sessions.order_by("pk")))

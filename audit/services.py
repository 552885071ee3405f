"""Writes to the audit log: recording an event (one INSERT) and pruning old ones."""

import getpass
import os
import re
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AuditEvent
from conversations import policy
from conversations.ids import URLSAFE

# A word that could be a conversation's public id (conversations.ids.SESSION_ID), standing
# alone. Ordinary words of that length are mostly lowercase letters ("internationalization"):
# those are kept; anything else of the shape is masked, erring on the side of the secret.
_ID_LIKE = re.compile(rf"(?<![{URLSAFE}])[{URLSAFE}]{{16,64}}(?![{URLSAFE}])")
_PLAIN_WORD = re.compile(r"[A-Z]?[a-z]+")
SESSION_ID_MASK = "[session id]"
SECRET_MASK = "[secret]"  # noqa: S105 (the mask, not a secret)


def mask_session_ids(text: str) -> str:
    """`text` with whatever could be a conversation's public id replaced by a mask."""
    return _ID_LIKE.sub(lambda m: m[0] if _PLAIN_WORD.fullmatch(m[0]) else SESSION_ID_MASK, text)


def field_changes(*, before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict]:
    """Each field whose value differs, with its old and new values; the values of any field
    named like a secret are masked (whoever reads the log must not be able to use them)."""
    changes = {}
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if "secret" in name.lower():
            old, new = (SECRET_MASK if old else old), (SECRET_MASK if new else new)
        changes[name] = {"old": old, "new": new}
    return changes


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container's arbitrary user)
        return f"uid {os.getuid()}"


def audit_record(
    *,
    action: str,
    request: HttpRequest | None = None,
    user: AbstractBaseUser | None = None,
    actor: str | None = None,
    conversation: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one event, in one INSERT: by the staff member signed in on `request`, or, with
    no request, by the operator running a command (`cli`, as the OS user).

    `user` is who acted when the request does not say yet (a sign-in); `actor`, the name
    typed when there is no such user (a failed sign-in).
    """
    if request is None:
        event = AuditEvent(actor_type=AuditEvent.ActorType.CLI, actor=actor or _os_user())
    else:
        user = user or getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        event = AuditEvent(
            actor_type=AuditEvent.ActorType.STAFF,
            actor_id=user.pk if signed_in else None,
            actor=(user.get_username() if signed_in else actor or "")[:150],
            ip_hash=policy.ip_hash(policy.client_ip(request)),
        )
    event.action = action
    event.conversation = conversation
    event.details = details or {}
    event.save(force_insert=True)
    return event


# The database refuses to delete audit events (PostgreSQL: the trigger of migration 0001)
# unless the deleting transaction carries this mark: only the prune below sets it.
PRUNE_MARK = "chatkit.audit_prune"


def audit_prune(
    *, older_than: timedelta, dry_run: bool = False, now: datetime | None = None
) -> int:
    """Delete the audit events older than `older_than` (how many; with `dry_run`, how many
    would go), and record the prune itself, in the same transaction."""
    cutoff = (now or timezone.now()) - older_than
    old = AuditEvent.objects.filter(at__lt=cutoff)
    if dry_run:
        return old.count()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # SET LOCAL: the mark ends with this transaction.
                cursor.execute("SELECT set_config(%s, 'on', true)", [PRUNE_MARK])
        deleted = old._raw_delete(old.db)
        audit_record(
            action=AuditEvent.Action.AUDIT_PRUNE,
            details={"cutoff": cutoff, "deleted": deleted, "older_than_days": older_than.days},
        )
    return deleted

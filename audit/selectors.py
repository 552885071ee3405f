"""Reads of the audit log."""

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_actors() -> list[str]:
    """Who has acted, by name, for the admin's actor filter: the names typed in failed
    sign-ins are left out (anyone can type any number of them)."""
    return list(
        AuditEvent.objects.exclude(action=AuditEvent.Action.LOGIN_FAILED)
        .order_by("actor")
        .values_list("actor", flat=True)
        .distinct()
    )


def audit_events_batch(events: QuerySet[AuditEvent], *, after: int, size: int) -> list[AuditEvent]:
    """The next `size` events of `events` with an id above `after`, in id order."""
    return list(events.filter(pk__gt=after).order_by("pk")[:size])

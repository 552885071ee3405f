"""Reads of the audit log."""

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_events_batch(events: QuerySet[AuditEvent], *, after: int, size: int) -> list[AuditEvent]:
    """The next `size` events of `events` with an id above `after`, in id order."""
    return list(events.filter(pk__gt=after).order_by("pk")[:size])

"""`manage.py prune_audit`: events past the audit log's own retention go, and the prune is
itself recorded."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def aged(days: float) -> AuditEvent:
    """An event recorded `days` ago (recorded now, its time set as the database allows: the
    trigger refuses UPDATE, so it is written with that time)."""
    event = AuditEvent(
        actor_type="cli", actor="ops", action="purge", at=timezone.now() - days * DAY
    )
    event.save(force_insert=True)
    return event


def prune(*args) -> str:
    out = io.StringIO()
    call_command("prune_audit", *args, stdout=out)
    return out.getvalue()


def test_events_older_than_the_retention_setting_go(settings):
    settings.CHATKIT_AUDIT_RETENTION_DAYS = 30
    old, recent = aged(31), aged(29)

    assert "Deleted 1 audit event(s) older than 30 day(s)." in prune()

    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert old.pk not in remaining and recent.pk in remaining


def test_the_default_retention_is_a_year():
    old, recent = aged(366), aged(364)

    prune()

    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert old.pk not in remaining and recent.pk in remaining


def test_days_given_win_over_the_setting():
    old, recent = aged(8), aged(6)

    prune("--days", "7")

    remaining = set(AuditEvent.objects.values_list("pk", flat=True))
    assert old.pk not in remaining and recent.pk in remaining


def test_the_prune_is_recorded_with_what_it_removed():
    aged(400)
    aged(500)

    prune()

    [event] = AuditEvent.objects.filter(action="audit_prune")
    assert event.actor_type == "cli" and event.actor
    assert event.details["deleted"] == 2
    assert event.details["older_than_days"] == 365


def test_a_dry_run_counts_and_deletes_nothing():
    aged(400)

    assert "Dry run: would delete 1 audit event(s)" in prune("--dry-run")

    assert AuditEvent.objects.count() == 1
    assert not AuditEvent.objects.filter(action="audit_prune").exists()


def test_a_retention_under_a_day_is_refused():
    aged(400)

    with pytest.raises(CommandError, match="1 day or more"):
        prune("--days", "0")

    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_prune_mark_ends_with_the_prune_on_postgresql():
    # SET LOCAL: once the prune's transaction has committed, a DELETE is refused again.
    aged(400)
    prune()
    kept = audit_record(action=AuditEvent.Action.PURGE)

    def delete():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")

    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"):
            delete()
        assert AuditEvent.objects.filter(pk=kept.pk).exists()
    else:  # SQLite: no mark to check (SECURITY.md)
        delete()
        assert not AuditEvent.objects.exists()

"""Nobody edits or deletes an audit event: not through the admin (superusers included), and,
below it, not through SQL where the database can refuse it."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db

LOG = "/admin/audit/auditevent/"


@pytest.fixture
def event():
    return audit_record(action=AuditEvent.Action.PURGE, details={"conversations": 3})


def test_a_superuser_cannot_add_change_or_delete_an_event(admin_client, event):
    assert admin_client.get(LOG).status_code == 200
    assert admin_client.get(f"{LOG}add/").status_code == 403
    assert admin_client.get(f"{LOG}{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"{LOG}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    # Its page shows it, read-only: a POST changes nothing.
    page = admin_client.get(f"{LOG}{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"{LOG}{event.pk}/change/", {"actor": "x"}).status_code == 403
    event.refresh_from_db()
    assert event.actor != "x" and event.details == {"conversations": 3}


def test_the_list_offers_no_delete_action_even_to_a_superuser(admin_client, event):
    page = admin_client.get(LOG).content.decode()
    assert "delete_selected" not in page
    data = {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}

    admin_client.post(LOG, data)

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_sql_cannot_update_an_event(event):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor = 'someone else'")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(details={})
    event.refresh_from_db()
    assert event.details == {"conversations": 3}


def test_sql_cannot_delete_an_event_on_postgresql(event):
    # PostgreSQL refuses a DELETE that the prune command has not marked; SQLite has no such
    # mark to check (SECURITY.md says so), and deletes.
    def delete():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")

    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"):
            delete()
        assert AuditEvent.objects.filter(pk=event.pk).exists()
    else:
        delete()
        assert not AuditEvent.objects.filter(pk=event.pk).exists()


def test_recording_an_event_is_one_insert(django_assert_num_queries):
    with django_assert_num_queries(1) as queries:
        audit_record(action=AuditEvent.Action.PURGE)
    assert queries.captured_queries[0]["sql"].startswith('INSERT INTO "audit_auditevent"')


def test_only_a_view_permission_exists_to_grant():
    from django.contrib.auth.models import Permission

    codenames = Permission.objects.filter(content_type__app_label="audit")
    assert sorted(codenames.values_list("codename", flat=True)) == ["view_auditevent"]

"""The audit log in the admin: a list with filters, readable only with the permission to view
it, and a CSV export of what the filters select, itself recorded."""

import csv
import io
import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.utils import timezone

from audit import exports
from audit.models import AuditEvent
from audit.services import audit_record
from tests.conversations.test_admin_export import read
from tests.helpers import staff_member

pytestmark = pytest.mark.django_db

LOG = "/admin/audit/auditevent/"
EXPORT = LOG + "export/"
DAY = timedelta(days=1)


def recorded(action: str, *, actor: str = "ops", days_ago: float = 0, **fields) -> AuditEvent:
    event = AuditEvent(
        actor_type="cli",
        actor=actor,
        action=action,
        at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )
    event.save(force_insert=True)
    return event


def rows(response) -> list[dict]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(read(response))))


def test_the_list_filters_by_action_actor_and_date(admin_client):
    recorded("purge", actor="ops", conversation=11)
    recorded("erasure", actor="ops", conversation=22)
    recorded("purge", actor="night-shift", conversation=33)
    recorded("purge", actor="ops", days_ago=40, conversation=44)

    def shown(**query) -> list[int]:
        page = admin_client.get(LOG, query).content.decode()
        return sorted(int(n) for n in re.findall(r'class="field-conversation">(\d+)<', page))

    assert shown() == [11, 22, 33, 44]
    assert shown(action__exact="purge") == [11, 33, 44]
    assert shown(actor="night-shift") == [33]
    # As the "Past 7 days" choice of the date filter says it.
    since = str(timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - 7 * DAY)
    assert shown(at__gte=since, action__exact="purge") == [11, 33]


def test_the_csv_export_holds_the_filtered_rows_and_is_recorded(admin_client, admin_user):
    purge = recorded("purge", actor="ops", details={"conversations": 3}, conversation=None)
    recorded("erasure", actor="ops", conversation=7)

    response = admin_client.get(EXPORT, {"action__exact": "purge"})

    assert response.status_code == 200
    assert 'filename="audit-' in response["Content-Disposition"]
    [row] = rows(response)
    assert row["id"] == str(purge.pk)
    assert (row["action"], row["actor_type"], row["actor"]) == ("purge", "cli", "ops")
    assert row["details"] == '{"conversations": 3}'
    [export] = AuditEvent.objects.filter(action="audit_export")
    assert (export.actor, export.actor_id) == (admin_user.username, admin_user.pk)
    assert export.details == {"filter": {"action__exact": "purge"}, "rows": 1}


def test_the_export_leaves_out_its_own_record(admin_client):
    recorded("purge")

    exported = rows(admin_client.get(EXPORT))

    # The sign-in (the test client's) and the purge: not the export being written.
    assert [r["action"] for r in exported] == ["login", "purge"]
    assert AuditEvent.objects.filter(action="audit_export").count() == 1


def test_the_export_spans_batches_in_order():
    events = [recorded("purge", details={"n": n}) for n in range(5)]

    async def lines() -> str:
        return "".join([line async for line in exports.csv_lines(purges, batch_size=2)])

    purges = AuditEvent.objects.filter(action="purge")
    exported = list(csv.DictReader(io.StringIO(async_to_sync(lines)())))

    assert [int(r["id"]) for r in exported] == [e.pk for e in events]
    assert [r["details"] for r in exported] == [f'{{"n": {n}}}' for n in range(5)]


def test_a_cell_a_spreadsheet_would_run_is_quoted(admin_client):
    recorded("login_failed", actor='=HYPERLINK("https://evil.example","x")')

    [row] = rows(admin_client.get(EXPORT, {"action__exact": "login_failed"}))

    assert row["actor"] == '\'=HYPERLINK("https://evil.example","x")'


def test_unknown_filters_are_refused_and_not_exported(admin_client):
    assert admin_client.get(EXPORT, {"nonsense": "1"}).status_code == 400
    assert not AuditEvent.objects.filter(action="audit_export").exists()


def test_the_list_links_to_the_export_of_what_it_shows(admin_client):
    page = admin_client.get(LOG, {"action__exact": "purge"}).content.decode()

    assert f'href="{EXPORT}?action__exact=purge"' in page


def test_staff_without_the_view_permission_neither_see_nor_export_it(client, django_user_model):
    recorded("purge")
    reviewer = staff_member(django_user_model, "reviewer", is_staff=True)
    client.force_login(reviewer)

    assert client.get(LOG).status_code == 403
    assert client.get(EXPORT).status_code == 403

    reviewer.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert client.get(LOG).status_code == 200
    assert client.get(EXPORT).status_code == 200


def test_a_staff_member_with_every_audit_permission_still_cannot_delete(client, django_user_model):
    event = audit_record(action=AuditEvent.Action.PURGE)
    member = staff_member(django_user_model, "lead", is_staff=True)
    member.user_permissions.add(*Permission.objects.filter(content_type__app_label="audit"))
    client.force_login(member)

    assert client.post(f"{LOG}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_names_typed_in_failed_sign_ins_are_searchable_but_not_offered(admin_client):
    recorded("login_failed", actor="guess-one", conversation=55)
    recorded("purge", actor="ops", conversation=66)

    page = admin_client.get(LOG).content.decode()
    assert "?actor=ops" in page and "?actor=guess-one" not in page
    found = admin_client.get(LOG, {"q": "guess-one"}).content.decode()
    assert re.findall(r'class="field-conversation">(\d+)<', found) == ["55"]

"""The operator's commands that remove conversations are recorded: actor `cli` and the OS
user, with what they removed, by database id (the ids typed are the visitors' credentials)."""

import getpass
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from conversations.models import Session
from tests.factories import conversation, idle_conversation, reply, reply_streaming, visitor

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def run(name: str, *args: str) -> CommandError | None:
    try:
        call_command(name, *args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        return exc
    return None


def test_a_purge_is_recorded_with_what_it_deleted(assistant):
    idle_conversation(assistant, 40 * DAY, messages=3)
    idle_conversation(assistant, 40 * DAY, messages=2)
    busy = idle_conversation(assistant, 40 * DAY, messages=1)
    reply_streaming(busy)
    idle_conversation(assistant, 2 * DAY, messages=2)

    run("purge_sessions", "--older-than", "30d")

    [event] = AuditEvent.objects.filter(action="purge")
    assert (event.actor_type, event.actor) == ("cli", getpass.getuser())
    assert event.ip_hash == "" and event.conversation is None
    assert event.details["conversations"] == 2
    assert event.details["messages"] == 5
    assert event.details["in_flight"] == 1
    assert event.details["older_than_seconds"] == 30 * DAY.total_seconds()
    assert event.details["assistant"] is None


def test_a_dry_run_purge_removes_nothing_and_records_nothing(assistant):
    idle_conversation(assistant, 40 * DAY, messages=1)

    run("purge_sessions", "--older-than", "30d", "--dry-run")

    assert Session.objects.count() == 1
    assert not AuditEvent.objects.exists()


def test_an_erasure_is_recorded_by_database_id_never_the_public_id(assistant):
    first = conversation(assistant, visitor("My address is 1 Main St"), reply("Noted."))
    second = conversation(assistant, visitor("Hi"))
    kept = conversation(assistant, visitor("Hello"))

    failed = run("delete_session", "--", first.public_id, second.public_id, "x" * 22)

    assert failed is not None  # one id was not found
    [event] = AuditEvent.objects.filter(action="erasure")
    assert (event.actor_type, event.actor) == ("cli", getpass.getuser())
    assert event.details == {
        "conversations": [first.pk, second.pk],
        "not_found": 1,
        "in_flight": 0,
    }
    recorded = str(AuditEvent.objects.values().get(pk=event.pk))
    assert first.public_id not in recorded and "x" * 22 not in recorded
    assert list(Session.objects.values_list("pk", flat=True)) == [kept.pk]


def test_erasing_one_conversation_names_it(assistant):
    talk = conversation(assistant, visitor("Hi"))
    pk = talk.pk

    run("delete_session", "--", talk.public_id)

    [event] = AuditEvent.objects.filter(action="erasure")
    assert event.conversation == pk

"""Retention and erasure: `services.session_purge`, `purge_sessions` and `delete_session`."""

import io
import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import selectors, services
from conversations.exceptions import ChatKitError
from conversations.models import Assistant, Message, Session
from conversations.services.retention import session_purge_batch
from tests.factories import idle_conversation, messages_add, reply_streaming
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)


def purge(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("purge_sessions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def delete_sessions(*ids: str) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("delete_session", "--", *ids, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def remaining(*sessions: Session) -> list[Session]:
    return [s for s in sessions if Session.objects.filter(pk=s.pk).exists()]


# --- The service ------------------------------------------------------------------------------


def test_only_conversations_idle_since_before_the_cutoff_are_deleted(assistant):
    now = timezone.now()
    cutoff = now - 30 * DAY
    before = idle_conversation(assistant, 30 * DAY + MICROSECOND, messages=3, now=now)
    at = idle_conversation(assistant, 30 * DAY, messages=2, now=now)
    after = idle_conversation(assistant, 30 * DAY - MICROSECOND, messages=2, now=now)

    report = services.session_purge(older_than=30 * DAY, now=now)

    assert (report.sessions, report.messages, report.in_flight) == (1, 3, 0)
    assert report.cutoff == cutoff
    assert remaining(before, at, after) == [at, after]
    assert not Message.objects.filter(session_id=before.pk).exists()
    assert Message.objects.filter(session__in=[at, after]).count() == 4


def test_a_dry_run_counts_and_deletes_nothing(assistant):
    idle = [idle_conversation(assistant, 40 * DAY, messages=3) for _ in range(2)]
    busy = idle_conversation(assistant, 40 * DAY)
    reply_streaming(busy)

    report = services.session_purge(older_than=30 * DAY, dry_run=True, batch_size=2)

    assert (report.sessions, report.messages, report.in_flight, report.batches) == (2, 6, 1, 2)
    assert remaining(*idle, busy) == [*idle, busy]
    assert Message.objects.count() == 9
    assert Message.objects.get(status="streaming").session_id == busy.pk


def test_the_assistant_filter_keeps_other_assistants_conversations(assistant):
    other = Assistant.objects.create(slug="support", name="Support", system_prompt="Help.")
    mine = idle_conversation(assistant, 40 * DAY)
    theirs = idle_conversation(other, 40 * DAY)

    report = services.session_purge(older_than=30 * DAY, assistant_slug="support")

    assert (report.sessions, report.messages) == (1, 2)
    assert remaining(mine, theirs) == [mine]


def test_an_inactive_assistants_conversations_are_purged_too(assistant):
    Assistant.objects.filter(pk=assistant.pk).update(is_active=False)
    old = idle_conversation(assistant, 40 * DAY)

    report = services.session_purge(older_than=30 * DAY, assistant_slug=assistant.slug)

    assert report.sessions == 1
    assert remaining(old) == []


@pytest.mark.parametrize(
    ("count", "batch_size", "batches"), [(5, 2, 3), (4, 2, 2), (2, 2, 1), (3, 1, 3), (1, 1000, 1)]
)
def test_batches_split_the_work_exactly(assistant, count, batch_size, batches):
    for i in range(count):
        idle_conversation(assistant, 40 * DAY, messages=i + 1)
    seen = []

    report = services.session_purge(
        older_than=30 * DAY,
        batch_size=batch_size,
        on_batch=lambda batch, total: seen.append((batch.sessions, total.batches)),
    )

    assert report.batches == batches
    assert report.sessions == count
    assert report.messages == sum(range(1, count + 1))
    sizes = [min(batch_size, count - n * batch_size) for n in range(batches)]
    assert seen == [(size, n + 1) for n, size in enumerate(sizes)]
    assert not Session.objects.exists()
    assert not Message.objects.exists()


def test_nothing_to_purge_runs_no_batch(assistant):
    recent = idle_conversation(assistant, DAY)

    report = services.session_purge(older_than=30 * DAY)

    assert (report.batches, report.sessions, report.messages) == (0, 0, 0)
    assert remaining(recent) == [recent]


def test_a_conversation_with_a_reply_in_flight_is_kept_and_counted(assistant):
    busy = idle_conversation(assistant, 40 * DAY, messages=3)
    reply = reply_streaming(busy)
    done = idle_conversation(assistant, 40 * DAY)

    report = services.session_purge(older_than=30 * DAY, batch_size=1)

    assert (report.sessions, report.messages, report.in_flight) == (1, 2, 1)
    assert remaining(busy, done) == [busy]
    assert Message.objects.get(pk=reply.pk).status == "streaming"
    assert busy.messages.count() == 4


def test_a_reply_abandoned_by_a_dead_process_is_purged_with_its_conversation(assistant, settings):
    settings.CHATKIT_REPLY_TIMEOUT = 60
    stuck = idle_conversation(assistant, 40 * DAY)
    reply_streaming(stuck, started_ago=timedelta(seconds=60) + selectors.ABANDONED_MARGIN + SECOND)

    report = services.session_purge(older_than=30 * DAY)

    assert (report.sessions, report.messages, report.in_flight) == (1, 3, 0)
    assert remaining(stuck) == []


def test_a_conversation_active_again_since_its_batch_was_chosen_is_kept(assistant):
    # The window between choosing a batch's ids and deleting them: the batch re-checks the
    # cutoff on the rows it locks, so a turn that began meanwhile keeps its conversation.
    now = timezone.now()
    cutoff = now - 30 * DAY
    chosen = [idle_conversation(assistant, 40 * DAY, messages=2) for _ in range(2)]
    Session.objects.filter(pk=chosen[1].pk).update(last_activity_at=now)
    idle = Session.objects.filter(last_activity_at__lt=cutoff)
    in_flight = Exists(Message.objects.filter(session=OuterRef("pk"), status="streaming"))

    batch = session_purge_batch(
        idle, [s.pk for s in chosen], cutoff=cutoff, reply_in_flight=in_flight, dry_run=False
    )

    assert (batch.sessions, batch.messages) == (1, 2)
    assert remaining(*chosen) == [chosen[1]]
    assert chosen[1].messages.count() == 2


def test_no_message_row_is_loaded_and_one_delete_per_batch(assistant):
    for _ in range(3):
        idle_conversation(assistant, 40 * DAY, messages=4)

    with CaptureQueriesContext(connection) as queries:
        report = services.session_purge(older_than=30 * DAY, batch_size=2)

    sql = [q["sql"] for q in queries.captured_queries]
    # A message row read into Python names the table's columns at the top level; the only
    # message columns named there belong to the batch DELETEs.
    assert [q for q in sql if '"conversations_message".' in q and not q.startswith("DELETE")] == []
    message_deletes = [q for q in sql if q.startswith('DELETE FROM "conversations_message"')]
    assert len(message_deletes) == report.batches == 2
    assert report.messages == 12
    assert not Message.objects.exists()


def test_queries_do_not_grow_with_the_conversations_in_a_batch(assistant):
    def queries_to_purge(sessions: int, messages: int) -> int:
        for _ in range(sessions):
            idle_conversation(assistant, 40 * DAY, messages=messages)
        with CaptureQueriesContext(connection) as queries:
            report = services.session_purge(older_than=30 * DAY, batch_size=100)
        assert report.sessions == sessions
        return len(queries)

    assert queries_to_purge(2, 2) == queries_to_purge(40, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"older_than": timedelta(0)}, "more than zero"),
        ({"older_than": -DAY}, "more than zero"),
        ({"older_than": 30 * DAY, "batch_size": 0}, "between 1 and"),
        ({"older_than": 30 * DAY, "batch_size": 10_001}, "between 1 and"),
        ({"older_than": timedelta(days=999_999_999)}, "too large"),
        ({"older_than": 30 * DAY, "assistant_slug": "nope"}, "no assistant with the slug 'nope'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_deleted(assistant, kwargs, message):
    old = idle_conversation(assistant, 40 * DAY)

    with pytest.raises(ChatKitError) as refused:
        services.session_purge(**kwargs)

    assert message in str(refused.value)
    assert remaining(old) == [old]


# --- purge_sessions ----------------------------------------------------------------------------


def test_the_command_purges_in_batches_and_reports_each(assistant):
    for _ in range(5):
        idle_conversation(assistant, 40 * DAY, messages=2)
    kept = idle_conversation(assistant, DAY)

    out, err = purge("--older-than", "30d", "--batch-size", "2")

    assert out.splitlines()[:3] == [
        "batch 1: deleted 2 conversations, 4 messages",
        "batch 2: deleted 2 conversations, 4 messages",
        "batch 3: deleted 1 conversation, 2 messages",
    ]
    assert "deleted 5 conversations and 10 messages last active before" in out
    assert "kept 0 with a reply in flight" in out
    assert err == ""
    assert list(Session.objects.all()) == [kept]


@pytest.mark.parametrize(
    ("age", "older", "newer"),
    [
        ("90min", timedelta(minutes=91), timedelta(minutes=89)),
        ("12h", timedelta(hours=12, minutes=1), timedelta(hours=11, minutes=59)),
        ("30d", 30 * DAY + timedelta(minutes=1), 30 * DAY - timedelta(minutes=1)),
        ("90d", 90 * DAY + timedelta(minutes=1), 90 * DAY - timedelta(minutes=1)),
        ("2w", 14 * DAY + timedelta(minutes=1), 14 * DAY - timedelta(minutes=1)),
    ],
)
def test_older_than_takes_minutes_hours_days_and_weeks(assistant, age, older, newer):
    gone, kept = idle_conversation(assistant, older), idle_conversation(assistant, newer)

    purge("--older-than", age)

    assert remaining(gone, kept) == [kept]


def test_without_older_than_the_retention_setting_decides(assistant, settings):
    settings.CHATKIT_RETENTION_DAYS = 7
    gone = idle_conversation(assistant, 7 * DAY + timedelta(minutes=1))
    kept = idle_conversation(assistant, 7 * DAY - timedelta(minutes=1))

    out, _ = purge()

    assert "deleted 1 conversation and 2 messages" in out
    assert remaining(gone, kept) == [kept]


def test_the_command_dry_run_deletes_nothing(assistant):
    old = [idle_conversation(assistant, 40 * DAY, messages=3) for _ in range(2)]

    out, _ = purge("--older-than", "30d", "--dry-run")

    assert "batch 1: would delete 2 conversations, 6 messages" in out
    assert "Dry run: would delete 2 conversations and 6 messages" in out
    assert remaining(*old) == old
    assert Message.objects.count() == 6


def test_the_command_filters_by_assistant(assistant):
    other = Assistant.objects.create(slug="support", name="Support", system_prompt="Help.")
    mine, theirs = idle_conversation(assistant, 40 * DAY), idle_conversation(other, 40 * DAY)

    out, _ = purge("--older-than", "30d", "--assistant", "support")

    assert "(assistant support)" in out
    assert remaining(mine, theirs) == [mine]


def test_the_command_reports_conversations_kept_for_a_reply_in_flight(assistant):
    busy = idle_conversation(assistant, 40 * DAY)
    reply_streaming(busy)

    out, _ = purge("--older-than", "30d")

    assert out.startswith(
        "batch 1: deleted 0 conversations, 0 messages, kept 1 (reply in flight)\n"
    )
    assert "kept 1 with a reply in flight" in out
    assert remaining(busy) == [busy]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30"], "use a number and one of the units min, h, d, w"),
        (["--older-than", "30x"], "use a number and one of the units"),
        (["--older-than=-5d"], "use a number and one of the units"),
        (["--older-than", "1.5d"], "use a number and one of the units"),
        (["--older-than", "2m"], "'m' could be minutes or months: write min for minutes"),
        (["--older-than", "2M"], "use a number and one of the units"),
        (["--older-than", "1mo"], "months differ in length: write days or weeks"),
        (["--older-than", "3months"], "months differ in length"),
        (["--older-than", "0d"], "more than zero"),
        (["--older-than", "59min"], "--older-than 59min is under an hour"),
        (["--older-than", "0h", "--force"], "more than zero"),
        (["--older-than", "99999999999d"], "too large"),
        (["--older-than", "30d", "--batch-size", "0"], "batch size must be between 1 and"),
        (["--older-than", "30d", "--batch-size", "-1"], "batch size must be between 1 and"),
        (["--older-than", "30d", "--batch-size", "lots"], "invalid int value: 'lots'"),
        (["--older-than", "30d", "--assistant", "nope"], "no assistant with the slug 'nope'"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(assistant, args, message):
    old = idle_conversation(assistant, 40 * DAY)

    with pytest.raises(CommandError, match=message):
        purge(*args)

    assert remaining(old) == [old]


def test_an_age_under_an_hour_takes_force(assistant):
    gone = idle_conversation(assistant, timedelta(minutes=31))
    kept = idle_conversation(assistant, timedelta(minutes=29))

    with pytest.raises(CommandError, match="Add --force if that is meant"):
        purge("--older-than", "30min")
    assert remaining(gone, kept) == [gone, kept]

    purge("--older-than", "30min", "--force")
    assert remaining(gone, kept) == [kept]


def test_an_hour_needs_no_force(assistant):
    gone = idle_conversation(assistant, timedelta(minutes=61))

    purge("--older-than", "60min")

    assert remaining(gone) == []


def test_a_dry_run_under_an_hour_needs_no_force(assistant):
    idle = idle_conversation(assistant, timedelta(minutes=31))

    out, _ = purge("--older-than", "30min", "--dry-run")

    assert "Dry run: would delete 1 conversation" in out
    assert remaining(idle) == [idle]


def test_verbosity_0_prints_nothing_and_logs_nothing(assistant, caplog):
    gone = idle_conversation(assistant, 40 * DAY)
    caplog.set_level(logging.INFO, logger="conversations")

    out, err = purge("--older-than", "30d", "--verbosity", "0")

    assert (out, err) == ("", "")
    assert [r for r in caplog.records if r.name.startswith("conversations")] == []
    assert remaining(gone) == []


def test_verbosity_1_logs_one_summary_line(assistant, caplog):
    idle_conversation(assistant, 40 * DAY)
    caplog.set_level(logging.INFO, logger="conversations")

    purge("--older-than", "30d")

    lines = [r.getMessage() for r in caplog.records if r.name == "conversations.services"]
    assert len(lines) == 1
    assert lines[0].startswith("purge: cutoff=") and "conversations=1 messages=2" in lines[0]


def test_verbosity_0_still_prints_errors(assistant):
    with pytest.raises(CommandError, match="no assistant with the slug 'nope'"):
        purge("--older-than", "30d", "--assistant", "nope", "--verbosity", "0")


def test_a_retention_setting_below_one_day_is_refused(settings):
    settings.CHATKIT_RETENTION_DAYS = 0

    with pytest.raises(CommandError, match="CHATKIT_RETENTION_DAYS must be 1 or more"):
        purge()


def test_bad_arguments_exit_non_zero_from_the_command_line():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}

    result = subprocess.run(
        [sys.executable, "manage.py", "purge_sessions", "--older-than", "soon"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Refused by the argument parser: its usage line, its message, its status (2), no traceback.
    assert result.returncode == 2
    assert "argument --older-than: 'soon': use a number and one of the units" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_age_may_come_as_a_keyword_from_code(assistant):
    old = idle_conversation(assistant, 40 * DAY)
    out = io.StringIO()

    call_command("purge_sessions", older_than="30d", stdout=out)

    assert remaining(old) == []
    with pytest.raises(CommandError, match="--older-than 'soon': use a number and one of"):
        call_command("purge_sessions", older_than="soon", stdout=out)


# --- delete_session ----------------------------------------------------------------------------


def test_delete_session_erases_the_conversations_named(session, assistant):
    messages_add(session, 4)
    other = Session.objects.create(assistant=assistant)
    messages_add(other, 2)

    out, err, failed = delete_sessions(session.public_id)

    assert failed is None
    assert out == f"deleted: {session.public_id}\n"
    assert err == ""
    assert remaining(session, other) == [other]
    assert not Message.objects.filter(session_id=session.pk).exists()


def test_delete_session_reports_ids_that_do_not_exist(session):
    missing = "x" * 32

    out, err, failed = delete_sessions(session.public_id, missing, "not an id")

    assert out == f"deleted: {session.public_id}\n"
    assert f"not found (never existed or already deleted): {missing}\n" in err
    assert "not found (never existed or already deleted): not an id\n" in err
    assert str(failed) == "2 of 3 conversations not deleted."
    assert remaining(session) == []


def test_delete_session_keeps_a_conversation_with_a_reply_in_flight(session):
    messages_add(session, 1)
    reply_streaming(session)

    out, err, failed = delete_sessions(session.public_id)

    assert out == ""
    assert err == f"not deleted, a reply is being written: {session.public_id}\n"
    assert "run again once the reply has ended" in str(failed)
    assert remaining(session) == [session]


def test_delete_session_erases_a_conversation_whose_reply_was_abandoned(session, settings):
    settings.CHATKIT_REPLY_TIMEOUT = 60
    reply_streaming(
        session, started_ago=timedelta(seconds=60) + selectors.ABANDONED_MARGIN + SECOND
    )

    _, _, failed = delete_sessions(session.public_id)

    assert failed is None
    assert remaining(session) == []


def test_delete_session_prints_nothing_but_the_ids_typed(session, assistant):
    Session.objects.filter(pk=session.pk).update(title="My order 1234 and my address")
    messages_add(session, 2)
    busy = Session.objects.create(assistant=assistant)
    reply_streaming(busy)
    bystander = Session.objects.create(assistant=assistant)
    typed = [session.public_id, busy.public_id, "y" * 32]

    out, err, _ = delete_sessions(*typed)

    assert out.splitlines() == [f"deleted: {session.public_id}"]
    assert err.splitlines() == [
        f"not found (never existed or already deleted): {typed[2]}",
        f"not deleted, a reply is being written: {busy.public_id}",
    ]
    assert bystander.public_id not in out + err


def test_an_id_that_begins_with_a_dash_goes_after_a_double_dash(assistant):
    session = Session.objects.create(assistant=assistant, public_id="-" + "a" * 31)
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match="unrecognized arguments"):
        call_command("delete_session", session.public_id, stdout=out, stderr=err)
    assert remaining(session) == [session]

    call_command("delete_session", "--", session.public_id, stdout=out, stderr=err)
    assert out.getvalue() == f"deleted: {session.public_id}\n"
    assert remaining(session) == []


def test_delete_session_at_verbosity_0_prints_only_what_failed(session):
    messages_add(session, 2)
    missing = "z" * 32
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match="1 of 2 conversations not deleted"):
        call_command(
            "delete_session",
            "--verbosity",
            "0",
            "--",
            session.public_id,
            missing,
            stdout=out,
            stderr=err,
        )

    assert out.getvalue() == ""
    assert err.getvalue() == f"not found (never existed or already deleted): {missing}\n"
    assert remaining(session) == []


def test_delete_session_needs_an_id():
    _, _, failed = delete_sessions()

    assert "Give at least one conversation id, or --user." in str(failed)

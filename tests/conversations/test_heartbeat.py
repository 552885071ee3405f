"""Which replies are in flight (conversations.heartbeat, selectors.replies): a reply blocks its
conversation while its owner beats, and a final write that failed is retried with back-off."""

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import heartbeat, selectors
from conversations.models import ProcessHeartbeat, Session
from tests.factories import reply_streaming

MINUTE = timedelta(minutes=1)
ELSEWHERE = "elsewhere:4242:0badcafe"  # another process, as replies name it


@pytest.fixture
def owned():
    """Replies this process writes, for the test (let go after it)."""
    pks = []

    def own(pk: int) -> int:
        heartbeat.own(pk)
        pks.append(pk)
        return pk

    yield own
    for pk in pks:
        heartbeat.disown(pk)


# --- Retrying a reply's final write ------------------------------------------------------------


class Write:
    """A reply's final write that fails `failures` times, then goes through; it notes when."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.attempts: list[float] = []
        self.stored = threading.Event()

    def __call__(self) -> None:
        self.attempts.append(time.monotonic())
        if len(self.attempts) <= self.failures:
            raise ConnectionError("the database is away")
        self.stored.set()


def eventually(condition, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_failed_final_write_is_retried_at_doubling_intervals(owned):
    pk = owned(-101)
    write = Write(failures=2)

    failed_at = time.monotonic()  # the write failed just now: its retries come later
    heartbeat.retry_later(pk, write)

    assert write.stored.wait(10)
    gaps = [later - earlier for earlier, later in itertools.pairwise([failed_at, *write.attempts])]
    first = heartbeat.RETRY_FIRST_SECONDS
    for gap, expected in zip(gaps, [first, 2 * first, 4 * first], strict=True):
        assert expected - 0.01 <= gap < expected + 0.5, gaps
    assert eventually(lambda: not heartbeat.owns(pk))  # stored: this process no longer writes it


def test_the_first_failed_write_of_a_reply_is_the_one_retried(owned):
    pk = owned(-102)
    first, second = Write(failures=1), Write()

    heartbeat.retry_later(pk, first)
    heartbeat.retry_later(pk, second)  # a later ending of the same reply, which failed too

    assert first.stored.wait(10)
    assert len(first.attempts) == 2 and second.attempts == []


def test_a_write_of_a_reply_this_process_does_not_write_is_not_retried(owned):
    stranger, sentinel = Write(), Write()

    heartbeat.retry_later(-103, stranger)
    heartbeat.retry_later(owned(-104), sentinel)

    assert sentinel.stored.wait(10)  # retries due together run in one pass
    assert stranger.attempts == []


# --- Which replies are in flight ---------------------------------------------------------------


def liveness() -> timedelta:
    return heartbeat.liveness()


def past_the_reply_timeout() -> timedelta:
    return timezone.now() - selectors.abandoned_before(timezone.now()) + MINUTE


@pytest.fixture
def long_reply_timeout(settings):
    # Past CHATKIT_REPLY_TIMEOUT every reply is abandoned: keep it well beyond the heartbeat's
    # liveness window, so that the heartbeat's rules are what each case tests.
    settings.CHATKIT_REPLY_TIMEOUT = 100 * heartbeat.liveness().total_seconds()


def beat(process: str, ago: timedelta) -> None:
    ProcessHeartbeat.objects.update_or_create(
        process=process, defaults={"beat_at": timezone.now() - ago}
    )


@pytest.mark.usefixtures("long_reply_timeout")
@pytest.mark.parametrize(
    ("owner", "beat_ago", "reply_age", "abandoned"),
    [
        # Its owner stopped beating, and stored it longer ago than the liveness window.
        (ELSEWHERE, lambda: liveness() + MINUTE, lambda: liveness() + MINUTE, True),
        (ELSEWHERE, None, lambda: liveness() + MINUTE, True),  # no beat stored at all
        # Its owner was alive when it stored it, moments ago: not known dead yet.
        (ELSEWHERE, lambda: liveness() + MINUTE, lambda: MINUTE, False),
        (ELSEWHERE, None, lambda: MINUTE, False),
        # Its owner beats: however long the model writes, the reply is in flight...
        (ELSEWHERE, lambda: timedelta(0), lambda: liveness() + MINUTE, False),
        # ...until the reply timeout: no live turn lasts that long.
        (ELSEWHERE, lambda: timedelta(0), past_the_reply_timeout, True),
        # Stored before replies named their owner: only the reply timeout tells.
        ("", None, lambda: liveness() + MINUTE, False),
        ("", None, past_the_reply_timeout, True),
    ],
    ids=[
        "owner-gone",
        "owner-never-beat",
        "owner-gone-reply-new",
        "owner-never-beat-reply-new",
        "owner-alive",
        "owner-alive-past-reply-timeout",
        "no-owner",
        "no-owner-past-reply-timeout",
    ],
)
def test_a_reply_is_abandoned_when_its_owner_is_gone(
    session, owner, beat_ago, reply_age, abandoned
):
    if beat_ago is not None:
        beat(owner, beat_ago())
    reply = reply_streaming(session, started_ago=reply_age(), owner=owner)
    now = timezone.now()

    assert selectors.reply_abandoned(reply, now=now) is abandoned
    in_flight = selectors.replies_in_flight(now=now).filter(pk=reply.pk).exists()
    assert in_flight is not abandoned  # the admin and the purge see it the same way


@pytest.mark.usefixtures("long_reply_timeout")
@pytest.mark.parametrize(
    "reply_age", [lambda: timedelta(0), lambda: liveness() + MINUTE], ids=["new", "old"]
)
def test_a_reply_this_process_writes_is_in_flight(session, owned, reply_age):
    beat(heartbeat.process_id(), timedelta(0))
    reply = reply_streaming(session, started_ago=reply_age(), owner=heartbeat.process_id())
    owned(reply.pk)
    now = timezone.now()

    assert not selectors.reply_abandoned(reply, now=now)
    assert selectors.replies_in_flight(now=now).filter(pk=reply.pk).exists()


@pytest.mark.usefixtures("long_reply_timeout")
@pytest.mark.parametrize(
    "reply_age", [lambda: timedelta(0), lambda: liveness() + MINUTE], ids=["new", "old"]
)
def test_a_reply_this_process_names_but_no_longer_writes_is_abandoned(session, reply_age):
    # This process beats (for other replies), but this one it no longer writes: its turn is
    # over, whatever the row says.
    beat(heartbeat.process_id(), timedelta(0))
    reply = reply_streaming(session, started_ago=reply_age(), owner=heartbeat.process_id())
    now = timezone.now()

    assert selectors.reply_abandoned(reply, now=now)
    assert not selectors.replies_in_flight(now=now).filter(pk=reply.pk).exists()


# --- Sweeping up after processes that are gone -----------------------------------------------


def test_a_gone_processs_reply_is_ended_and_its_reservation_settled_without_a_new_message(
    session, settings
):
    from conversations.models import DailySpend, Message
    from conversations.services.turns import replies_abandoned_end

    settings.CHATKIT_HEARTBEAT_SECONDS = 1  # gone after three missed beats: 3 s
    today = timezone.now().date()
    spend = DailySpend.objects.create(assistant=session.assistant, day=today, tokens=530)
    left = reply_streaming(session, started_ago=MINUTE, owner=ELSEWHERE)
    Message.objects.filter(pk=left.pk).update(
        reserved_tokens=530, reserved_prompt_tokens=30, reserved_on=today
    )
    ProcessHeartbeat.objects.create(process=ELSEWHERE, beat_at=timezone.now() - MINUTE)
    other = Session.objects.create(assistant=session.assistant)
    alive = reply_streaming(other, started_ago=MINUTE, owner="alive:1:00")
    ProcessHeartbeat.objects.create(process="alive:1:00", beat_at=timezone.now())

    assert replies_abandoned_end() == 1

    left.refresh_from_db()
    assert (left.status, left.error_code) == ("interrupted", "abandoned")
    spend.refresh_from_db()
    assert spend.tokens == 30  # the reservation, replaced by the prompt's estimate
    alive.refresh_from_db()
    assert alive.status == "streaming"  # a live process's reply is never touched
    assert replies_abandoned_end() == 0  # and each is ended once


def test_a_late_final_write_of_its_writer_replaces_an_empty_abandoned_ending(
    session, fake_llm, settings
):
    from conversations import services
    from conversations.models import DailySpend, Message

    fake_llm.configure(reply_tokens=2)
    session.assistant.daily_token_budget = 10_000
    session.assistant.save()
    turn = services.turn_open_sync(public_id=session.public_id, content="hi")
    reserved = turn.reservation.tokens
    # Its writer lost the database for longer than three beats: another process ended it.
    Message.objects.filter(pk=turn.reply.pk).update(
        status="interrupted", error_code="abandoned", content=""
    )
    DailySpend.objects.filter(assistant=session.assistant).update(
        tokens=turn.reservation.prompt_estimate  # as that process settled it
    )

    # The writer's retried final write goes through once the database is back.
    reply = services.turn_end_sync(
        turn, status="complete", content="tok0 tok1", prompt_tokens=2, completion_tokens=2
    )

    stored = Message.objects.get(pk=reply.pk)
    assert (stored.status, stored.content, stored.error_code) == ("complete", "tok0 tok1", "")
    assert DailySpend.objects.get(assistant=session.assistant).tokens == 4
    assert reserved > 4


def test_heartbeats_of_processes_gone_for_a_day_are_forgotten(db):
    now = timezone.now()
    ProcessHeartbeat.objects.create(process="gone:1:00", beat_at=now - timedelta(days=2))
    ProcessHeartbeat.objects.create(process="recent:1:00", beat_at=now - timedelta(hours=1))

    heartbeat._sweep()

    assert list(ProcessHeartbeat.objects.values_list("process", flat=True)) == ["recent:1:00"]

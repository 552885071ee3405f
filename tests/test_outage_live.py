"""Outages through real uvicorn processes: nothing a failure leaves behind blocks a conversation.

A reply being written names its process, which beats while it writes (conversations.heartbeat):
a killed process's reply stops blocking its conversation within three beats, a live one's is
never taken for abandoned, and a reply whose final write meets a database outage is stored
by its process once the database is back. Each server here beats every second or two, so
what takes seconds here takes three beats in production.

The outage here lasts less than a beat. A writer cut off from the database cannot beat
either: once it has missed three beats, another process takes its pending reply for
abandoned and ends it, without the text only the writer holds.
"""

import contextlib
import sqlite3
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from conversations.models import Message
from tests.live import database_url
from tests.sse import outline, parse, read_text
from tests.tcp_proxy import TcpProxy

BEAT = 1  # seconds between a server's heartbeats, unless a test says otherwise


def new_session(server) -> str:
    return httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]


@contextlib.contextmanager
def stream(server, session_id: str, content: str = "Hello?"):
    """Open a streamed turn; yields its events (pings left out) as they arrive."""
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream(
            "POST",
            f"/api/v1/sessions/{session_id}/messages",
            json={"content": content, "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        yield (event for event in parse(response.iter_lines()) if event.name != "ping")


def post(server, session_id: str, content: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/sessions/{session_id}/messages",
        json={"content": content},
        timeout=30,
    )


def post_until_taken(
    server, session_id: str, content: str, *, within: float
) -> tuple[httpx.Response, list[httpx.Response]]:
    """Send a message as a visitor would, again while told to come back later (409, 503);
    the last answer, and the refusals before it."""
    deadline = time.monotonic() + within
    refused = []
    while True:
        response = post(server, session_id, content)
        if response.status_code not in (409, 503) or time.monotonic() > deadline:
            return response, refused
        refused.append(response)
        time.sleep(0.1)  # a visitor's pace, not a wait for anything


def reply(session_id: str, seq: int = 2) -> Message:
    return Message.objects.get(session__public_id=session_id, seq=seq)


def words(count: int) -> str:
    """What the fake model says with `reply_tokens=count`."""
    return " ".join(f"tok{i}" for i in range(count))


# --- A process that dies, and one that lives ---------------------------------------------------


def test_a_reply_of_a_killed_process_holds_up_its_conversation_only_seconds(
    model_server_factory, fake, default_assistant
):
    doomed = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(BEAT))
    other = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(BEAT))
    session_id = new_session(other)
    fake.configure(fault="hang", fault_count=1)  # the first reply never comes; later ones do

    with stream(doomed, session_id) as events:
        assert next(events).name == "message"  # its reply is stored, `streaming`
        assert fake.wait_for_requests(1)  # and the model is being asked
        doomed.process.kill()  # SIGKILL: nothing of it ends the reply
        doomed.process.wait()
    killed_at = time.monotonic()

    answer, refused = post_until_taken(other, session_id, "Anyone there?", within=10)

    assert answer.status_code == 201, answer.text
    # Blocked only until the dead process missed three beats (plus one, for the last beat).
    assert time.monotonic() - killed_at < 4 * BEAT + 2
    assert all(busy.status_code == 409 for busy in refused)
    assert all(busy.headers["Retry-After"] == str(BEAT) for busy in refused)
    left = reply(session_id)
    assert (left.status, left.error_code) == ("interrupted", "abandoned")
    assert answer.json()["assistant_message"]["content"] == "Echo: Anyone there?"


def test_a_reply_a_live_process_writes_is_never_taken_for_abandoned(
    model_server_factory, fake, default_assistant
):
    writer = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(BEAT))
    other = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(BEAT))
    session_id = new_session(other)
    liveness = timedelta(seconds=3 * BEAT)
    tokens = 7
    fake.configure(reply_tokens=tokens, itl=1.0)  # ~6 s: longer than three beats

    checked = deltas = 0
    with stream(writer, session_id) as events:
        for event in events:
            deltas += event.name == "delta"
            if event.name != "delta" or deltas == tokens:  # after the last one, it ends
                continue
            # Once the reply is older than three beats, only its writer's beats keep it going.
            if timezone.now() - reply(session_id).created_at > liveness:
                busy = post(other, session_id, "Me too")
                assert busy.status_code == 409, busy.text
                assert busy.json()["error"]["code"] == "reply_in_progress"
                assert busy.headers["Retry-After"] == str(BEAT)
                checked += 1
        last = event

    assert checked >= 2
    assert last.name == "done" and last.data["content"] == words(tokens)
    written = reply(session_id)
    assert (written.status, written.content) == ("complete", words(tokens))
    assert written.session.messages.count() == 2  # the other process stored nothing


# --- A database outage -------------------------------------------------------------------------


class LockedDatabase:
    """SQLite: a lock held on the database file keeps every write out (every process shares
    the file); the servers give up on a locked database quickly."""

    writer_env = other_env = {"SQLITE_BUSY_TIMEOUT": "0.2"}
    other_status = 503  # the database is away for every process

    def __init__(self):
        self._db = None

    def begin(self) -> None:
        self._db = sqlite3.connect(connection.settings_dict["NAME"], timeout=10)
        self._db.isolation_level = None
        self._db.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self._db is not None:
            self._db.execute("ROLLBACK")
            self._db.close()
            self._db = None


class CutNetwork:
    """PostgreSQL: the writer reaches the database through a proxy, which is cut; its pool
    gives up waiting for a connection quickly."""

    other_env: dict = {}
    other_status = 409  # the database is there for the others; the reply still pending

    def __init__(self):
        url = urlsplit(database_url())
        self._proxy = TcpProxy(url.hostname, url.port)
        netloc = url.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{self._proxy.port}"
        self.writer_env = {
            "DATABASE_URL": urlunsplit(url._replace(netloc=netloc)),
            "DB_POOL_TIMEOUT": "0.5",
        }

    def begin(self) -> None:
        self._proxy.cut()

    def end(self) -> None:
        self._proxy.restore()


@pytest.fixture
def outage(transactional_db):
    """The database going away for a server (`begin()`) and coming back (`end()`)."""
    outage = LockedDatabase() if connection.vendor == "sqlite" else CutNetwork()
    yield outage
    outage.end()  # a test that failed half-way leaves no lock behind


def test_a_reply_whose_final_write_meets_a_database_outage_is_stored_once_it_is_back(
    model_server_factory, fake, default_assistant, outage
):
    beat = 2  # the outage lasts less than a beat (see this module's docstring)
    writer = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(beat), **outage.writer_env)
    other = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(beat), **outage.other_env)
    session_id = new_session(other)
    fake.configure(reply_tokens=3, hold_after=2)  # two words, then wait for release()

    with stream(writer, session_id) as events:
        assert next(events).name == "message"
        read_text(events, "tok0 tok1 ")
        outage.begin()
        fake.release()  # the model ends the reply: its final write meets the outage
        rest = list(events)
    assert outline(rest) == ["delta…", "error"]
    assert rest[-1].data["code"] == "internal_error"

    # The reply waits for the database, still its writer's: a visitor is told to come back.
    busy = post(other, session_id, "Still there?")
    assert busy.status_code == outage.other_status, busy.text
    assert int(busy.headers["Retry-After"]) >= 1
    assert writer.wait_for_output("final write failed again")  # retried, and failed again
    outage.end()
    back_at = time.monotonic()

    answer, refused = post_until_taken(other, session_id, "Still there?", within=10)

    assert answer.status_code == 201, answer.text
    assert time.monotonic() - back_at < 2 * beat + 2  # not CHATKIT_REPLY_TIMEOUT's minutes
    assert all(int(busy.headers["Retry-After"]) >= 1 for busy in refused)
    stored = reply(session_id)
    assert (stored.status, stored.content, stored.error_code) == ("complete", words(3), "")
    assert writer.wait_for_output("final write went through on a retry")


@contextlib.contextmanager
def final_writes_refused():
    """The database refuses to end any `streaming` reply (its disk is full, say), until the
    block ends; everything else it stores as usual."""
    if connection.vendor == "sqlite":
        install = [
            "CREATE TRIGGER refuse_reply_end BEFORE UPDATE OF status ON conversations_message"
            " WHEN OLD.status = 'streaming' AND NEW.status <> 'streaming'"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        ]
        remove = ["DROP TRIGGER IF EXISTS refuse_reply_end"]
    else:
        install = [
            "CREATE FUNCTION refuse_reply_end() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'disk full' USING ERRCODE = 'disk_full'; END $$",
            "CREATE TRIGGER refuse_reply_end BEFORE UPDATE ON conversations_message FOR EACH ROW"
            " WHEN (OLD.status = 'streaming' AND NEW.status <> 'streaming')"
            " EXECUTE FUNCTION refuse_reply_end()",
        ]
        remove = [
            "DROP TRIGGER IF EXISTS refuse_reply_end ON conversations_message",
            "DROP FUNCTION IF EXISTS refuse_reply_end()",
        ]
    with connection.cursor() as cursor:
        for statement in install:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in remove:
                cursor.execute(statement)


def test_a_reply_waiting_for_its_final_write_is_409_with_retry_after_until_it_is_stored(
    model_server_factory, fake, default_assistant
):
    writer = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(BEAT))
    other = model_server_factory(CHATKIT_HEARTBEAT_SECONDS=str(BEAT))
    session_id = new_session(other)
    fake.configure(reply_tokens=3, hold_after=2)  # two words, then wait for release()

    with stream(writer, session_id) as events:
        assert next(events).name == "message"
        read_text(events, "tok0 tok1 ")
        with final_writes_refused():
            fake.release()
            assert outline(events) == ["delta…", "error"]
            # Its writer retries, every beat at most, and beats meanwhile: long past the
            # three beats a silent owner would have, the conversation still waits for it.
            # (Asking the writer itself would make it beat: it does before each turn.)
            stored_at = reply(session_id).created_at
            while timezone.now() - stored_at < timedelta(seconds=6 * BEAT):
                busy = post(other, session_id, "Still there?")
                assert busy.status_code == 409, busy.text
                assert busy.headers["Retry-After"] == str(BEAT)
                time.sleep(0.1)  # a visitor's pace
            assert writer.wait_for_output(f"retrying in {BEAT:.1f}s", count=2)
            assert post(writer, session_id, "Still there?").status_code == 409
    back_at = time.monotonic()

    answer, _ = post_until_taken(other, session_id, "Still there?", within=10)

    assert answer.status_code == 201, answer.text
    assert time.monotonic() - back_at < 2 * BEAT + 2
    stored = reply(session_id)
    assert (stored.status, stored.content, stored.error_code) == ("complete", words(3), "")

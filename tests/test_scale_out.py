"""Scale-out: two app processes, as on two machines behind a load balancer, sharing PostgreSQL
and Redis and nothing else.

They serve a PostgreSQL database of this module's own (whether the suite runs on SQLite or on
PostgreSQL), migrated with `manage.py migrate` as an operator does, with small pools
(DB_POOL_MAX_SIZE=2), and a Redis of its own. The test sees only what their clients see: their
HTTP answers.
"""

import contextlib
import json
import os
import secrets
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ROOT
from tests.live import RedisProcess, ScratchPostgres, new_session, send, session_id
from tests.sse import parse

TOKEN = "metrics-token-" + "s" * 32

# The metered assistant's replies reserve max_output_tokens (10) and an upper bound of the
# prompt, a token a byte and 8 a message: "Help." 5 + 8 and "hi" 2 + 8. A budget of exactly
# that admits one reply at a time.
RESERVED = 10 + 13 + 10


@pytest.fixture(scope="module")
def shared_postgres():
    """The URL of a migrated PostgreSQL database both processes use; dropped afterwards."""
    database = ScratchPostgres("chatkit_scale")
    try:
        database.migrate()
        yield database.url
    finally:
        database.drop()


@pytest.fixture(scope="module")
def shared_redis():
    server = RedisProcess()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def metered(shared_postgres, tmp_path_factory):
    """The slug of an assistant whose day's budget covers one reply at a time."""
    fixture = tmp_path_factory.mktemp("fixtures") / "metered.json"
    fields = {
        "slug": "metered",
        "name": "Metered",
        "system_prompt": "Help.",
        "max_output_tokens": 10,
        "daily_token_budget": RESERVED,
        # Fixtures are saved raw: no auto_now.
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    fixture.write_text(json.dumps([{"model": "conversations.assistant", "fields": fields}]))
    manage(shared_postgres, "loaddata", str(fixture))
    return "metered"


def manage(database_url: str, *args: str) -> None:
    """Run a management command on the shared database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def start_pair(model_server_factory, database_url: str, redis_url: str, **env: str):
    """Two app processes on their own ports, configured alike (one SECRET_KEY, as an operator
    deploys them), answered by the fake model."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "2",
        "SECRET_KEY": f"scale-out-secret-key-{secrets.token_hex(32)}",
        **env,
    }
    return model_server_factory(**env), model_server_factory(**env)


@pytest.fixture(scope="module")
def pair(model_server_factory, shared_postgres, shared_redis, tmp_path_factory):
    """Two processes sharing the database, Redis and a metrics directory; limits off."""
    servers = start_pair(
        model_server_factory,
        shared_postgres,
        shared_redis,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp("metrics")),
        METRICS_TOKEN=TOKEN,
    )
    yield servers
    for server in servers:  # before the database is dropped
        server.stop()


@contextlib.contextmanager
def streamed(server, session: str, content: str = "hi"):
    """Ask for a streamed turn; its response, open until the block ends."""
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream(
            "POST",
            f"/api/v1/sessions/{session}/messages",
            json={"content": content, "stream": True},
        ) as response,
    ):
        yield response


@contextlib.contextmanager
def writing(server, session: str, content: str = "hi"):
    """A streamed turn whose reply is being written (its first piece has come); yields the
    names of the events still to come."""
    with streamed(server, session, content) as response:
        assert response.status_code == 200, response.read()
        events = (event.name for event in parse(response.iter_lines()) if event.name != "ping")
        assert "delta" in events  # read up to the first piece
        yield events


def attempt(server, session: str) -> httpx.Response:
    """Ask for a streamed turn and leave: a refusal comes before any stream, so a turn let
    through by mistake cannot hold the test up (it is interrupted)."""
    with streamed(server, session) as response:
        if response.status_code != 200:
            response.read()
        return response


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition; 0 when it is not there yet."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def scrape(server) -> str:
    response = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.text


def test_a_session_created_through_one_continues_through_the_other(pair, fake):
    first, second = pair
    fake.configure(reply_tokens=3)
    session = session_id(first)

    assert send(second, session, "Where is my order?").status_code == 201
    assert send(first, session, "It is A-1001.").status_code == 201

    read = httpx.get(f"{second.url}/api/v1/sessions/{session}", timeout=30)
    assert read.status_code == 200
    messages = [(m["seq"], m["role"], m["status"]) for m in read.json()["messages"]]
    assert messages == [
        (1, "user", "complete"),
        (2, "assistant", "complete"),
        (3, "user", "complete"),
        (4, "assistant", "complete"),
    ]
    # The first process sent the model the turn the second one stored.
    prompt = [message["content"] for message in fake.requests[-1]["body"]["messages"]]
    assert "Where is my order?" in prompt and prompt[-1] == "It is A-1001."


def test_a_reply_being_written_on_one_gives_409_on_the_other(pair, fake):
    first, second = pair
    fake.configure(reply_tokens=3, hold_after=1)  # the reply waits for release()
    session = session_id(second)

    with writing(first, session) as events:
        busy = attempt(second, session)
        fake.release()
        assert list(events)[-1] == "done"

    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["code"] == "reply_in_progress"
    assert busy.headers["retry-after"].isdigit()
    assert send(second, session, "Hello?").status_code == 201  # once it is written


def test_a_limit_on_new_sessions_counts_across_both(
    model_server_factory, shared_postgres, shared_redis
):
    servers = start_pair(
        model_server_factory,
        shared_postgres,
        shared_redis,
        CHATKIT_RATELIMIT_ENABLED="true",
        CHATKIT_RATELIMIT_SESSIONS_PER_IP="3/h",
    )
    try:
        # Alternating, as a load balancer sends them: each process alone would allow 3.
        answers = [new_session(server).status_code for server in servers * 4]
    finally:
        for server in servers:
            server.stop()

    assert answers == [201] * 3 + [429] * 5


def test_a_days_budget_is_spent_across_both(pair, fake, metered):
    first, second = pair
    fake.configure(reply_tokens=3, hold_after=1)
    on_first, on_second = session_id(first, metered), session_id(second, metered)

    with writing(first, on_first) as events:  # its reservation holds the whole budget
        refused = attempt(second, on_second)
        fake.release()
        assert list(events)[-1] == "done"

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exhausted"
    assert len(fake.requests) == 1  # the refused turn never reached the model


def turns_complete(server) -> float:
    return metric(scrape(server), "chatkit_turns_total", assistant="default", status="complete")


def test_metrics_from_either_process_add_up_both(pair, fake):
    fake.configure(reply_tokens=3)
    before = turns_complete(pair[0])

    for server in pair:
        assert send(server, session_id(server)).status_code == 201

    for server in pair:  # whichever process the scraper reaches
        assert turns_complete(server) - before == 2

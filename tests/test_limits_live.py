"""The admission gate through real uvicorn processes: bursts, concurrent replies, processes
sharing Redis, proxies, the cache going away, and daily budgets under concurrency.

The rate-limited servers count where CI's configuration says (in memory, or in the Redis of
REDIS_URL), except where a test gives them a Redis itself. Each counts under keys of its own:
its SECRET_KEY keys the client-IP hash the keys end with, so no other test, nor an earlier
run, shares its counts; what a test counted in Redis is deleted after it.
"""

import contextlib
import json
import math
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
import redis
from django.conf import settings
from django.utils.crypto import salted_hmac

from conversations.models import DailySpend, Message, Session
from tests.factories import assistant_build
from tests.live import RedisProcess, new_session, send, session_id
from tests.sse import parse, read_text

KEY_PREFIX = "chatkit:rl:"


def client_hash(server, ip: str) -> str:
    """The keyed hash a server counts a client IP under (policy.ip_hash, with its secret)."""
    return salted_hmac(
        "chatkit.client-ip", ip, secret=server.secret, algorithm="sha256"
    ).hexdigest()


def session_hash(server, public_id: str) -> str:
    """The keyed hash a server counts a conversation's turns under (policy.session_hash)."""
    return salted_hmac(
        "chatkit.session-id", public_id, secret=server.secret, algorithm="sha256"
    ).hexdigest()


def counted_keys(server) -> list[bytes]:
    """The keys of the counts a server keeps in Redis for this test's clients and sessions."""
    idents = {client_hash(server, "127.0.0.1")}
    idents |= set(Session.objects.values_list("ip_hash", flat=True)) - {""}
    public_ids = Session.objects.values_list("public_id", flat=True)
    idents |= {session_hash(server, public_id) for public_id in public_ids}
    with redis.Redis.from_url(server.redis_url) as client:
        return [key for ident in idents for key in client.scan_iter(match=f"{KEY_PREFIX}*:{ident}")]


@pytest.fixture
def limited(model_server_factory, default_assistant):
    """Start uvicorn processes with the rate limits on (and the fake model behind them)."""
    started = []

    def start(**env: str):
        env.setdefault("SECRET_KEY", f"test-secret-key-{secrets.token_hex(32)}")
        env.setdefault("CHATKIT_RATELIMIT_ENABLED", "true")
        server = model_server_factory(**env)
        server.secret = env["SECRET_KEY"]
        server.redis_url = env.get("REDIS_URL", settings.REDIS_URL)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        if server.redis_url:
            forget_counts(server)


def forget_counts(server) -> None:
    """Delete what a server counted in Redis (nothing is left if one sharing it went first)."""
    with contextlib.suppress(redis.ConnectionError):  # a Redis the test stopped
        keys = counted_keys(server)
        if keys:
            with redis.Redis.from_url(server.redis_url) as client:
                client.delete(*keys)


def refused(response: httpx.Response, code: str) -> int:
    """Check a 429 and its code; its Retry-After, in seconds."""
    if not response.is_closed:
        response.read()
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) > 0, retry_after
    return int(retry_after)


@contextlib.contextmanager
def stream(client: httpx.Client, session: str, content: str = "hi"):
    """Open a streamed turn: its response, and its events (pings left out) as they come."""
    path = f"/api/v1/sessions/{session}/messages"
    with client.stream("POST", path, json={"content": content, "stream": True}) as response:
        events = (event for event in parse(response.iter_lines()) if event.name != "ping")
        yield response, events


def writing(opened) -> None:
    """Wait until an opened turn's reply is being written (its first piece has come)."""
    response, events = opened
    assert response.status_code == 200, response.read()
    assert next(event for event in events if event.name == "delta")


def ended(opened) -> str:
    """Read an opened turn to its end; the name of its last event."""
    _, events = opened
    return [event.name for event in events][-1]


# --- Counting: bursts, processes, proxies ---------------------------------------------------


def burst(urls: list[str], count: int) -> list[httpx.Response]:
    """`count` requests to start a session, all at once from as many threads, over `urls`."""
    start = threading.Barrier(count)

    def one(index: int) -> httpx.Response:
        start.wait(30)
        return httpx.post(f"{urls[index % len(urls)]}/api/v1/sessions", json={}, timeout=60)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


def counted(server, limit: str) -> int:
    """What a server counted in Redis for 127.0.0.1 against a limit, over every window."""
    with redis.Redis.from_url(server.redis_url) as client:
        keys = client.keys(f"{KEY_PREFIX}{limit}:*:{client_hash(server, '127.0.0.1')}")
        return sum(int(value) for value in client.mget(keys)) if keys else 0


def test_a_burst_of_50_lets_exactly_10_through_a_limit_of_10(limited):
    server = limited(CHATKIT_RATELIMIT_SESSIONS_PER_IP="10/h")

    responses = burst([server.url], 50)

    assert statuses(responses) == [201] * 10 + [429] * 40
    for response in responses:
        if response.status_code == 429:
            refused(response, "rate_limited")
    assert Session.objects.count() == 10
    if settings.REDIS_URL:  # counted in the shared cache, as CI's second configuration runs
        assert counted(server, "sessions-ip") == 50


def test_two_processes_sharing_redis_share_the_count(limited, own_redis):
    shared = {
        "REDIS_URL": own_redis.url,
        "SECRET_KEY": f"test-secret-key-{secrets.token_hex(32)}",
        "CHATKIT_RATELIMIT_SESSIONS_PER_IP": "10/h",
    }
    first, second = limited(**shared), limited(**shared)

    responses = burst([first.url, second.url], 50)

    assert statuses(responses) == [201] * 10 + [429] * 40
    assert Session.objects.count() == 10
    assert counted(first, "sessions-ip") == 50


def test_a_spoofed_forwarded_for_does_not_reset_the_count(limited):
    server = limited(CHATKIT_TRUSTED_PROXIES="0", CHATKIT_RATELIMIT_SESSIONS_PER_IP="2/h")
    for _ in range(2):
        assert new_session(server).status_code == 201

    for spoofed in ("203.0.113.7", "198.51.100.1, 203.0.113.8"):
        refused(new_session(server, **{"X-Forwarded-For": spoofed}), "rate_limited")

    hashes = set(Session.objects.values_list("ip_hash", flat=True))
    assert hashes == {client_hash(server, "127.0.0.1")}


def test_behind_a_trusted_proxy_each_client_counts_on_its_own(limited):
    server = limited(CHATKIT_TRUSTED_PROXIES="1", CHATKIT_RATELIMIT_SESSIONS_PER_IP="2/h")

    # The proxy appends the address it saw: the right-most entry. What is left of it is what
    # the client itself claimed, and changes nothing.
    def via_proxy(forwarded: str) -> httpx.Response:
        return new_session(server, **{"X-Forwarded-For": forwarded})

    assert via_proxy("203.0.113.1").status_code == 201
    assert via_proxy("198.51.100.1, 203.0.113.1").status_code == 201
    refused(via_proxy("198.51.100.2, 203.0.113.1"), "rate_limited")
    refused(via_proxy("203.0.113.2, 203.0.113.1"), "rate_limited")
    # Another client behind the same proxy counts on its own, even claiming the first's IP.
    assert via_proxy("203.0.113.1, 203.0.113.2").status_code == 201
    assert via_proxy("203.0.113.2").status_code == 201
    refused(via_proxy("203.0.113.2"), "rate_limited")

    stored = sorted(Session.objects.values_list("ip_hash", flat=True))
    first, other = client_hash(server, "203.0.113.1"), client_hash(server, "203.0.113.2")
    assert stored == sorted([first, first, other, other])


# --- Concurrent replies ---------------------------------------------------------------------


def test_concurrent_replies_per_ip_are_limited_and_one_ending_frees_a_place(limited, fake):
    server = limited(CHATKIT_RATELIMIT_STREAMS_PER_IP="2")
    sessions = [session_id(server) for _ in range(5)]
    with httpx.Client(base_url=server.url, timeout=30) as client, contextlib.ExitStack() as held:
        fake.configure(reply_tokens=3, hold_after=1)  # the first reply waits for release()
        first = held.enter_context(stream(client, sessions[0]))
        writing(first)
        # The others wait until their visitor leaves.
        fake.configure(reply_tokens=3, hold_after=None, fault="hang", hang_after=1)
        writing(held.enter_context(stream(client, sessions[1])))

        with stream(client, sessions[2]) as (third, _):
            refused(third, "rate_limited")
        assert not Message.objects.filter(session__public_id=sessions[2]).exists()

        fake.release()
        assert ended(first) == "done"  # sent once the reply is stored, and its place freed
        writing(held.enter_context(stream(client, sessions[3])))
        with stream(client, sessions[4]) as (fifth, _):
            refused(fifth, "rate_limited")

    assert len(fake.requests) == 3  # the refused turns never reached the model


def test_with_the_limits_off_nothing_is_limited(limited, fake):
    server = limited(
        CHATKIT_RATELIMIT_ENABLED="false",
        CHATKIT_RATELIMIT_SESSIONS_PER_IP="1/h",
        CHATKIT_RATELIMIT_MESSAGES_PER_SESSION="1/h",
        CHATKIT_RATELIMIT_MESSAGES_PER_IP="1/h",
        CHATKIT_RATELIMIT_STREAMS_PER_IP="1",
    )
    sessions = [session_id(server) for _ in range(2)]
    fake.configure(reply_tokens=3, hold_after=1)
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        stream(client, sessions[0]) as first,
        stream(client, sessions[1]) as second,
    ):
        writing(first)
        writing(second)  # two replies at once
        fake.release()
        assert ended(first) == ended(second) == "done"

    assert send(server, sessions[0], "again").status_code == 201


# --- The cache going away -------------------------------------------------------------------


@pytest.fixture
def own_redis():
    server = RedisProcess()
    yield server
    server.stop()


def test_the_cache_going_away_fails_open(limited, fake, own_redis):
    server = limited(REDIS_URL=own_redis.url)
    fake.configure(reply_tokens=3)
    assert send(server, session_id(server)).status_code == 201
    assert counted(server, "sessions-ip") == 1  # counted in Redis while it answered
    own_redis.stop()

    session = session_id(server)
    assert send(server, session).status_code == 201
    with httpx.Client(base_url=server.url, timeout=30) as client, stream(client, session) as turn:
        writing(turn)
        assert ended(turn) == "done"
    ready = httpx.get(f"{server.url}/health/ready", timeout=30)

    # Its access log line comes after every line the requests before it logged.
    assert server.wait_for_output('"GET /health/ready HTTP/1.1"')
    warnings = [line for line in server.output if "rate limits are not counting" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "cache": "degraded"}


# --- Daily token budgets --------------------------------------------------------------------

# The shop's replies reserve max_output_tokens (10) and an upper bound of the prompt: a token
# a byte and 8 a message, "Help." 5 + 8 and "hi" 2 + 8, so 33 tokens for a first turn. The
# fake model reports the words of the prompt (2) and of the reply.
PROMPT_ESTIMATE = 23
RESERVED = 10 + PROMPT_ESTIMATE


def shop(*, budget: int):
    assistant = assistant_build(
        slug="shop", system_prompt="Help.", max_output_tokens=10, daily_token_budget=budget
    )
    assistant.save()
    return assistant


def spent_today(assistant) -> int:
    return DailySpend.objects.get(assistant=assistant, day=datetime.now(UTC).date()).tokens


def seconds_until_midnight() -> int:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, UTC)
    return math.ceil((midnight - now).total_seconds())


@pytest.fixture(scope="module")
def model_server(model_server_factory):
    """A server answering with the fake model; the rate limits are off."""
    return model_server_factory()


def test_concurrent_replies_never_overshoot_the_budget(model_server, fake, default_assistant):
    assistant = shop(budget=4 * RESERVED - 1)  # room for three replies' reservations
    sessions = [session_id(model_server, "shop") for _ in range(6)]
    fake.configure(reply_tokens=3, hold_after=1)  # the replies wait until all are decided
    start, decided = threading.Barrier(6), threading.Semaphore(0)

    def turn(session: str) -> tuple[int, dict, object]:
        start.wait(30)
        with (
            httpx.Client(base_url=model_server.url, timeout=60) as client,
            stream(client, session) as (response, events),
        ):
            decided.release()
            if response.status_code != 200:
                return response.status_code, response.headers, response.read()
            return 200, response.headers, [event.name for event in events]

    before = seconds_until_midnight()
    with ThreadPoolExecutor(6) as pool:
        try:
            turns = [pool.submit(turn, session) for session in sessions]
            assert all(decided.acquire(timeout=30) for _ in turns)
            after = seconds_until_midnight()
            assert fake.wait_for_requests(3)
            assert spent_today(assistant) == 3 * RESERVED  # reserved while they are written
        finally:
            fake.release()
        results = [result.result() for result in turns]

    admitted = [events for status, _, events in results if status == 200]
    assert len(admitted) == 3 and all(events[-1] == "done" for events in admitted)
    refusals = [(headers, body) for status, headers, body in results if status != 200]
    assert len(refusals) == 3
    for headers, body in refusals:
        assert json.loads(body)["error"]["code"] == "budget_exhausted"
        assert after <= int(headers["retry-after"]) <= before  # until the next UTC midnight
    assert len(fake.requests) == 3
    replies = Message.objects.filter(session__assistant=assistant, role="assistant")
    assert [(r.prompt_tokens, r.completion_tokens) for r in replies] == [(2, 3)] * 3
    assert spent_today(assistant) == 3 * (2 + 3) <= assistant.daily_token_budget
    assert Message.objects.count() == 6  # the refused turns stored nothing


def test_an_interrupted_reply_settles_by_what_it_wrote(model_server, fake, default_assistant):
    assistant = shop(budget=1000)
    fake.configure(reply_tokens=5, hold_after=2)
    session = session_id(model_server, "shop")
    with (
        httpx.Client(base_url=model_server.url, timeout=30) as client,
        stream(client, session) as (response, events),
    ):
        assert response.status_code == 200
        read_text((event for event in events if event.name == "delta"), "tok0 tok1 ")
        # and the model holds the rest
        assert spent_today(assistant) == RESERVED
    # The visitor has left.

    pk = Session.objects.get(public_id=session).pk
    assert model_server.wait_for_output(f"conversation={pk} seq=2 status=interrupted")
    reply = Message.objects.get(session_id=pk, seq=2)
    assert (reply.content, reply.prompt_tokens) == ("tok0 tok1 ", None)
    # The prompt's estimate, as reserved, and the text's 10 bytes.
    assert spent_today(assistant) == PROMPT_ESTIMATE + 10

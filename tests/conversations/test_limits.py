"""The admission gate in-process: rate limits, daily token budgets and origins, as the API
answers them.

Bursts, concurrent replies, several processes, proxies and the cache going away run against
real uvicorn processes in tests/test_limits_live.py.
"""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from django.conf import settings
from django.test import AsyncClient
from prometheus_client import REGISTRY

from conversations import limits
from conversations.exceptions import RateLimited
from conversations.models import Assistant, DailySpend, Message, Session
from tests.factories import assistant_build, messages_add
from tests.helpers import post_json

pytestmark = pytest.mark.django_db

V1_SESSIONS = "/api/v1/sessions"
SEED_SESSIONS = "/api/create-session"
# Each route that starts a conversation, with the status it answers when it does.
SESSION_ROUTES = [(V1_SESSIONS, 201), (SEED_SESSIONS, 200)]
SEED_ROUTES = {SEED_SESSIONS, "/api/chat"}
EVIL = "https://evil.example"


def refused(response, code: str, *, seed: bool = False) -> int:
    """Check a refusal in its route's error shape; its Retry-After, in seconds."""
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    if seed:
        assert isinstance(error, str) and error
    else:
        assert error["code"] == code and error["message"]
    retry_after = response["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) > 0, retry_after
    return int(retry_after)


def forbidden(response, *, seed: bool = False) -> None:
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    if seed:
        assert isinstance(error, str) and error
    else:
        assert error["code"] == "origin_not_allowed"


def new_session(api, assistant: str | None = None, **extra) -> str:
    body = {"assistant": assistant} if assistant else {}
    response = post_json(api, V1_SESSIONS, body, **extra)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def send(api, session_id: str, content: str = "hi", **extra):
    return post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": content}, **extra)


def stored_contents(session_id: str) -> list[str]:
    return list(
        Message.objects.filter(session__public_id=session_id)
        .order_by("seq")
        .values_list("content", flat=True)
    )


# --- Rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "created"), SESSION_ROUTES)
def test_sessions_over_the_limit_per_ip_are_429(api, assistant, settings, route, created):
    settings.CHATKIT_RATELIMIT_SESSIONS_PER_IP = "2/h"
    for _ in range(2):
        assert post_json(api, route).status_code == created

    retry_after = refused(post_json(api, route), "rate_limited", seed=route in SEED_ROUTES)

    assert retry_after <= 3600  # the rest of the hour's window at most
    assert Session.objects.count() == 2


def test_seed_and_v1_sessions_count_together(api, assistant, settings):
    settings.CHATKIT_RATELIMIT_SESSIONS_PER_IP = "2/h"
    assert post_json(api, SEED_SESSIONS).status_code == 200
    assert post_json(api, V1_SESSIONS).status_code == 201
    refused(post_json(api, SEED_SESSIONS), "rate_limited", seed=True)
    refused(post_json(api, V1_SESSIONS), "rate_limited")


def test_messages_over_the_limit_per_session_are_429_and_store_nothing(api, assistant, settings):
    settings.CHATKIT_RATELIMIT_MESSAGES_PER_SESSION = "2/h"
    busy, other = new_session(api), new_session(api)
    for content in ("one", "two"):
        assert send(api, busy, content).status_code == 201
    stored = stored_contents(busy)

    retry_after = refused(send(api, busy, "three"), "rate_limited")

    assert retry_after <= 3600
    assert stored_contents(busy) == stored and len(stored) == 4
    assert Session.objects.get(public_id=busy).title == "one"
    # The limit is the conversation's: the visitor's other one goes on.
    assert send(api, other, "elsewhere").status_code == 201


def turn_request(route: str, session_id: str, content: str) -> tuple[str, dict]:
    if route == "seed":
        return "/api/chat", {"sessionId": session_id, "message": content}
    body = {"content": content, "stream": route == "v1-stream"}
    return f"/api/v1/sessions/{session_id}/messages", body


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_executor_connections")
@pytest.mark.parametrize("route", ["seed", "v1-json", "v1-stream"])
async def test_messages_over_the_limit_per_ip_are_429_on_every_chat_route(
    assistant, settings, route
):
    settings.CHATKIT_RATELIMIT_MESSAGES_PER_IP = "2/h"
    client = AsyncClient()
    sessions = []
    for _ in range(3):
        created = await client.post(V1_SESSIONS, {}, content_type="application/json")
        sessions.append(created.json()["id"])
    for session_id in sessions[:2]:  # one turn in each of two conversations
        path, body = turn_request(route, session_id, "hi")
        response = await client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 201), response.content
        if response.streaming:
            assert b"event: done" in b"".join([part async for part in response.streaming_content])

    path, body = turn_request(route, sessions[2], "one too many")
    response = await client.post(path, json.dumps(body), content_type="application/json")

    refused(response, "rate_limited", seed=route == "seed")
    assert not await Message.objects.filter(session__public_id=sessions[2]).aexists()


# Closing a response sends request_finished, which closes the database connection.
@pytest.mark.django_db(transaction=True)
def test_a_stream_closed_unsent_gives_back_its_place(api, assistant, settings):
    # Django closes a response it never sent (its visitor left first): the turn ends there.
    settings.CHATKIT_RATELIMIT_STREAMS_PER_IP = 1
    first, second = new_session(api), new_session(api)
    unsent = post_json(api, f"/api/v1/sessions/{first}/messages", {"content": "hi", "stream": True})
    assert unsent.status_code == 200

    unsent.close()

    assert Message.objects.get(session__public_id=first, seq=2).status == "interrupted"
    assert send(api, second).status_code == 201


# --- Daily token budgets --------------------------------------------------------------------

# The shop's replies reserve max_output_tokens (10) and an upper bound of the prompt: a token
# a byte and 8 a message, "Help." 5 + 8 and "hi" 2 + 8, so 33 tokens for a first turn. The
# fake model reports the words of the prompt (2) and of the reply.
PROMPT_ESTIMATE = 23
RESERVED = 10 + PROMPT_ESTIMATE


def shop(*, budget: int) -> Assistant:
    assistant = assistant_build(
        slug="shop", system_prompt="Help.", max_output_tokens=10, daily_token_budget=budget
    )
    assistant.save()
    return assistant


def spent(assistant: Assistant, day) -> int:
    return DailySpend.objects.get(assistant=assistant, day=day).tokens


def test_a_spent_budget_refuses_replies_until_the_next_utc_day(api, fake_llm, settings):
    settings.CHATKIT_RATELIMIT_STREAMS_PER_IP = 1  # a refused reply gives back its place
    fake_llm.configure(reply_tokens=3)  # 2 + 3 tokens spent a reply
    assistant = shop(budget=RESERVED + 4)  # once 5 are spent, a reply no longer fits
    evening = datetime(2030, 1, 1, 23, 0, tzinfo=UTC)
    with time_machine.travel(evening, tick=False):
        assert send(api, new_session(api, "shop")).status_code == 201
        assert spent(assistant, evening.date()) == 5
        late = new_session(api, "shop")

        retry_after = refused(send(api, late), "budget_exhausted")

        assert retry_after == 3600  # until midnight, UTC
        assert stored_contents(late) == []
        assert spent(assistant, evening.date()) == 5
        assert send(api, new_session(api)).status_code == 201  # another assistant's reply

    with time_machine.travel(datetime(2030, 1, 2, 0, 0, 1, tzinfo=UTC), tick=False):
        assert send(api, late).status_code == 201
        assert spent(assistant, evening.date()) == 5
        assert spent(assistant, datetime(2030, 1, 2).date()) == 5


def test_demo_replies_spend_nothing(api):
    # Without a model, the demo responder answers: no reservation, even past the budget.
    shop(budget=1)
    response = send(api, new_session(api, "shop"))

    assert response.status_code == 201
    assert response.json()["assistant_message"]["model"] == "demo"
    assert not DailySpend.objects.filter(tokens__gt=0).exists()


def test_a_reply_the_model_reports_no_usage_for_is_settled_by_an_estimate(api, fake_llm):
    fake_llm.configure(reply_tokens=3, usage=False)
    assistant = shop(budget=1000)
    response = send(api, new_session(api, "shop"))

    assert response.status_code == 201
    reply = response.json()["assistant_message"]
    assert reply["content"] == "tok0 tok1 tok2" and reply["usage"] is None
    # The prompt's estimate, as reserved, and the reply's 14 bytes.
    assert spent(assistant, datetime.now(UTC).date()) == PROMPT_ESTIMATE + 14


def alerts(assistant: str, percent: int) -> float:
    labels = {"assistant": assistant, "percent": str(percent)}
    return REGISTRY.get_sample_value("chatkit_budget_alerts_total", labels) or 0


def test_budget_alerts_are_logged_and_counted_once_a_day_each(api, fake_llm, caplog):
    fake_llm.configure(reply_tokens=1)  # 2 + 1 tokens spent a reply
    shop(budget=37)
    counted = {percent: alerts("shop", percent) for percent in (80, 100)}
    caplog.set_level(logging.WARNING, logger="conversations.services.budgets")

    # Reserved 33 of 37 (89%), then 3 + 33 (97%): 80% twice; then a reply no longer fits
    # (39), twice: 100%.
    statuses = [send(api, new_session(api, "shop")).status_code for _ in range(4)]

    assert statuses == [201, 201, 429, 429]
    lines = [r.getMessage() for r in caplog.records if "daily token budget" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith("assistant shop has spent 80% of its daily token budget")
    assert lines[1].startswith("assistant shop has spent 100% of its daily token budget")
    assert alerts("shop", 80) == counted[80] + 1
    assert alerts("shop", 100) == counted[100] + 1


# --- Origins, server-side -------------------------------------------------------------------


@pytest.mark.parametrize(("route", "created"), SESSION_ROUTES)
def test_a_foreign_origin_cannot_start_a_session(api, assistant, route, created):
    response = post_json(api, route, HTTP_ORIGIN=EVIL)

    forbidden(response, seed=route in SEED_ROUTES)
    assert not Session.objects.exists()


@pytest.mark.parametrize(("route", "created"), SESSION_ROUTES)
@pytest.mark.parametrize("origin", ["https://shop.example", "https://blog.example"])
def test_an_allowed_origin_starts_a_session(api, assistant, route, created, origin):
    assert post_json(api, route, HTTP_ORIGIN=origin).status_code == created
    assert Session.objects.get().origin == origin


def test_an_assistants_own_origins_narrow_the_allowed_ones(api):
    assistant_build(slug="shop", allowed_origins=["https://shop.example"]).save()
    # blog.example may embed the widget, but not this assistant.
    response = post_json(
        api, V1_SESSIONS, {"assistant": "shop"}, HTTP_ORIGIN="https://blog.example"
    )

    forbidden(response)
    new_session(api, "shop", HTTP_ORIGIN="https://shop.example")
    assert Session.objects.count() == 1


@pytest.mark.parametrize(("route", "created"), SESSION_ROUTES)
def test_the_chat_hosts_own_pages_may_always_start_a_session(api, assistant, route, created):
    assistant.allowed_origins = ["https://shop.example"]
    assistant.save()
    # The test client's host: in neither list. Behind a TLS proxy that sets no
    # X-Forwarded-Proto the request looks plain HTTP while the page is https: the host counts.
    for own in ("http://testserver", "https://testserver"):
        assert post_json(api, route, HTTP_ORIGIN=own).status_code == created
    forbidden(
        post_json(api, route, HTTP_ORIGIN="http://testserver:8080"), seed=route in SEED_ROUTES
    )
    forbidden(
        post_json(api, route, HTTP_ORIGIN="http://evil.testserver"), seed=route in SEED_ROUTES
    )


@pytest.mark.parametrize(("route", "created"), SESSION_ROUTES)
def test_a_request_without_an_origin_starts_a_session(api, assistant, route, created):
    assistant.allowed_origins = ["https://shop.example"]
    assistant.save()
    assert post_json(api, route).status_code == created


@pytest.mark.parametrize(("route", "created"), SESSION_ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_any_page_may_send_unasked_starts_no_session(
    api, assistant, route, created, content_type
):
    # What a form or `fetch(…, {mode: "no-cors"})` on any site may send without a preflight.
    response = api.post(route, "{}", content_type=content_type, HTTP_ORIGIN="https://shop.example")

    assert response.status_code == 415, response.content
    error = response.json()["error"]
    if route in SEED_ROUTES:
        assert isinstance(error, str) and error
    else:
        assert error["code"] == "unsupported_media_type"
    assert not Session.objects.exists()


def test_a_conversation_cannot_be_used_from_a_foreign_origin(api, session):
    messages_add(session, 2)
    path = f"/api/v1/sessions/{session.public_id}"
    foreign = {"HTTP_ORIGIN": EVIL}

    forbidden(api.get(path, **foreign))
    forbidden(api.delete(path, **foreign))
    forbidden(send(api, session.public_id, "from elsewhere", **foreign))
    chat = {"sessionId": session.public_id, "message": "from elsewhere"}
    forbidden(post_json(api, "/api/chat", chat, **foreign), seed=True)
    forbidden(post_json(api, f"{path}/messages/2/feedback", {"rating": "down"}, **foreign))

    assert stored_contents(session.public_id) == ["message 1", "message 2"]
    assert Message.objects.get(session=session, seq=2).feedback_rating == ""
    # From the site that embeds it, the same requests go through.
    allowed = {"HTTP_ORIGIN": "https://shop.example"}
    assert api.get(path, **allowed).status_code == 200
    assert (
        post_json(api, f"{path}/messages/2/feedback", {"rating": "up"}, **allowed).status_code
        == 200
    )


def test_an_ipv6_client_is_counted_by_its_64_network():
    from conversations.policy import ip_hash

    assert ip_hash("2001:db8:1:2::1") == ip_hash("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert ip_hash("2001:db8:1:2::1") != ip_hash("2001:db8:1:3::1")
    assert ip_hash("::ffff:203.0.113.7") == ip_hash("203.0.113.7")  # the same IPv4 client
    assert ip_hash("203.0.113.7") != ip_hash("203.0.113.8")


def test_clients_without_an_address_share_one_count_rather_than_none(api, assistant, settings):
    # uvicorn on a Unix socket, no proxy header: Django has no REMOTE_ADDR.
    settings.CHATKIT_RATELIMIT_SESSIONS_PER_IP = "2/h"
    statuses = [post_json(api, "/api/v1/sessions", REMOTE_ADDR="").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


async def test_a_lease_its_process_never_gave_back_expires(settings):
    # A killed worker cannot hold an IP's places among concurrent replies for good: a lease
    # lasts as long as a reply may (CHATKIT_REPLY_TIMEOUT), and a margin.
    settings.CHATKIT_RATELIMIT_STREAMS_PER_IP = 1
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        await limits.lease_take("a-client")  # and its process dies: never released
        with pytest.raises(RateLimited):
            await limits.lease_take("a-client")
    lasts = settings.CHATKIT_REPLY_TIMEOUT + limits.LEASE_MARGIN_SECONDS
    almost = time_machine.travel(start + timedelta(seconds=lasts - 1), tick=False)
    with almost, pytest.raises(RateLimited):
        await limits.lease_take("a-client")
    with time_machine.travel(start + timedelta(seconds=lasts + 1), tick=False):
        lease = await limits.lease_take("a-client")
    await lease.release()


async def test_admission_counts_in_order_and_stops_at_the_first_refusal(settings):
    # A chat turn's counts and lease go to the cache in one round trip; what a refusal
    # comes before is neither counted nor taken.
    settings.CHATKIT_RATELIMIT_MESSAGES_PER_IP = "1/m"
    settings.CHATKIT_RATELIMIT_MESSAGES_PER_SESSION = "2/m"
    settings.CHATKIT_RATELIMIT_STREAMS_PER_IP = 1
    hits = [(limits.MESSAGES_PER_IP, "an-ip"), (limits.MESSAGES_PER_SESSION, "a-session")]

    lease = await limits.admit(hits, lease_for="an-ip")  # ip 1, session 1, a lease
    await lease.release()
    with pytest.raises(RateLimited) as over_ip:
        await limits.admit(hits, lease_for="an-ip")  # ip 2: refused; the session not counted
    assert 1 <= over_ip.value.retry_after <= 60

    settings.CHATKIT_RATELIMIT_MESSAGES_PER_IP = "10/m"
    held = await limits.admit(hits, lease_for="an-ip")  # ip 3, session 2, the one lease
    with pytest.raises(RateLimited) as no_lease:
        await limits.admit([(limits.MESSAGES_PER_IP, "an-ip")], lease_for="an-ip")
    assert no_lease.value.retry_after == 5
    await held.release()
    with pytest.raises(RateLimited):  # session 3: over its 2
        await limits.admit(hits, lease_for="an-ip")
    lease = await limits.admit([], lease_for="an-ip")  # the lease refused above was not held
    await lease.release()


async def test_admission_with_limits_off_counts_nothing(settings):
    settings.CHATKIT_RATELIMIT_ENABLED = False
    settings.CHATKIT_RATELIMIT_MESSAGES_PER_IP = "1/m"
    for _ in range(3):
        assert await limits.admit([(limits.MESSAGES_PER_IP, "an-ip")], lease_for="an-ip") is (
            limits.NO_LEASE
        )


def refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("chatkit_refused_total", {"reason": reason}) or 0


def test_a_turn_from_a_foreign_origin_is_counted_stores_nothing_and_gives_back_its_place(
    api, session, settings
):
    settings.CHATKIT_RATELIMIT_STREAMS_PER_IP = 1
    counted = refusals("origin_not_allowed")
    last_activity = session.last_activity_at

    forbidden(send(api, session.public_id, "from elsewhere", HTTP_ORIGIN=EVIL))

    assert refusals("origin_not_allowed") == counted + 1
    assert stored_contents(session.public_id) == []
    session.refresh_from_db()
    assert (session.title, session.last_activity_at, session.next_seq) == ("", last_activity, 1)
    # Its place among the visitor's concurrent replies was given back.
    allowed = send(api, session.public_id, "from the shop", HTTP_ORIGIN="https://shop.example")
    assert allowed.status_code == 201


def cache_keys() -> list[str]:
    """Every key the rate limits count under in this test (tests count under their own)."""
    if not settings.REDIS_URL:
        return list(limits._local.counts) + list(limits._local.leases)
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        return [key.decode() for key in client.scan_iter(match=f"{limits.KEY_PREFIX}*")]


def test_a_conversations_turns_are_counted_without_its_id_in_the_cache(api, session, settings):
    settings.CHATKIT_RATELIMIT_MESSAGES_PER_SESSION = "1/h"
    assert send(api, session.public_id).status_code == 201

    refused(send(api, session.public_id), "rate_limited")

    keys = cache_keys()
    assert any(limits.MESSAGES_PER_SESSION.name in key for key in keys), keys
    assert not any(session.public_id in key for key in keys)


def test_a_reply_larger_than_the_whole_budget_is_refused_and_alerted_once(api, fake_llm, caplog):
    assistant = shop(budget=RESERVED - 1)  # not even a day with nothing spent has room
    caplog.set_level(logging.WARNING, logger="conversations.services.budgets")
    counted = alerts("shop", 100)

    for _ in range(2):
        refused(send(api, new_session(api, "shop")), "budget_exhausted")

    lines = [r.getMessage() for r in caplog.records if "daily token budget" in r.getMessage()]
    assert len(lines) == 1 and "has spent 100%" in lines[0]
    assert alerts("shop", 100) == counted + 1
    assert spent(assistant, datetime.now(UTC).date()) == 0
    assert not Message.objects.exists()

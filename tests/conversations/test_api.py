"""The HTTP API: the seed's wire format, version 1, and the JSON error shapes."""

import hashlib
import json
import re
from datetime import datetime
from urllib.parse import unquote

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from conversations.api import errors
from conversations.models import Assistant, Message, Session
from conversations.policy import ip_hash
from tests.factories import messages_add
from tests.helpers import post_json

pytestmark = pytest.mark.django_db


def new_session(api, **body) -> str:
    response = post_json(api, "/api/v1/sessions", body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def v1_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def seed_error(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str) and error
    return error


# --- Health -----------------------------------------------------------------------------


def test_format_query_parameters_change_nothing(api):
    assert api.get("/health?format=xml").json()["status"] == "OK"


@pytest.mark.parametrize("accept", ["text/html", "text/event-stream", "application/xml"])
def test_any_accept_header_gets_json_never_406(api, session, accept):
    response = api.get(f"/api/v1/sessions/{session.public_id}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["id"] == session.public_id


def test_health_reports_ok_timestamp_and_uptime(api):
    body = api.get("/health").json()
    assert body["status"] == "OK"
    assert body["timestamp"].endswith("Z")
    assert body["uptime"] >= 0


def test_ready_checks_database_and_cache(api):
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok"}}


# --- The seed's flow ----------------------------------------------------------------------


def test_seed_flow_answers_from_the_configured_server(api, fake_llm):
    fake_llm.configure(reply="Our shop opens at nine.")
    created = post_json(api, "/api/create-session")
    assert created.status_code == 200
    assert created.json()["message"] == "Session created successfully"
    session_id = created.json()["sessionId"]

    response = post_json(api, "/api/chat", {"sessionId": session_id, "message": "When?"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"sessionId", "response", "timestamp"}
    assert body["sessionId"] == session_id
    assert body["response"] == "Our shop opens at nine."
    assert fake_llm.last_request["body"]["messages"][-1] == {"role": "user", "content": "When?"}


def test_seed_chat_in_demo_mode_is_labelled(api):
    session_id = post_json(api, "/api/create-session").json()["sessionId"]
    body = post_json(api, "/api/chat", {"sessionId": session_id, "message": "hi"}).json()
    assert body["response"].startswith("[Demo mode]")
    assert Message.objects.get(seq=2).model == "demo"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": "hi"},
        {"sessionId": "x" * 32},
        {"sessionId": "x" * 32, "message": ""},
        {"sessionId": "x" * 32, "message": "   \n  "},
        {"sessionId": "x" * 32, "message": "a" * 1001},
        {"sessionId": "x" * 32, "message": 42},
        {"sessionId": "x" * 32, "message": ["hi"]},
        {"sessionId": 7, "message": "hi"},
        [],
        "hi",
    ],
)
def test_seed_chat_rejects_bad_input_with_its_own_error_shape(api, body):
    seed_error(post_json(api, "/api/chat", body), 400)


def test_seed_chat_rejects_malformed_json(api):
    response = api.post("/api/chat", "{not json", content_type="application/json")
    assert "JSON" in seed_error(response, 400)


def test_seed_chat_unknown_session_is_404(api):
    body = {"sessionId": "A" * 32, "message": "hi"}
    assert seed_error(post_json(api, "/api/chat", body), 404) == "Session not found."


def test_seed_routes_answer_405_in_their_shape(api):
    seed_error(api.get("/api/chat"), 405)
    seed_error(api.get("/api/create-session"), 405)


# --- Assistants ---------------------------------------------------------------------------


def test_assistant_config_is_public_and_says_demo_mode(api, assistant):
    body = api.get("/api/v1/assistants/default").json()
    assert body == {
        "slug": "default",
        "name": assistant.name,
        "greeting": assistant.greeting,
        "starter_prompts": assistant.starter_prompts,
        "accent_color": assistant.accent_color,
        "max_message_chars": 1000,
        "mode": "demo",
        "notice": "",
        "privacy_url": "",
        "unavailable_message": "",
        "retention_days": 30,
        "identity": "off",
    }
    assert "system_prompt" not in body


def test_assistant_config_carries_the_notice_set_in_the_admin(api, assistant, settings):
    settings.CHATKIT_RETENTION_DAYS = 90
    assistant.notice = "An AI answers. We keep chats for 90 days."
    assistant.privacy_url = "https://shop.example/privacy"
    assistant.save()

    body = api.get("/api/v1/assistants/default").json()
    assert body["notice"] == "An AI answers. We keep chats for 90 days."
    assert body["privacy_url"] == "https://shop.example/privacy"
    assert body["retention_days"] == 90


def test_assistant_config_says_live_with_a_key(api, fake_llm):
    assert api.get("/api/v1/assistants/default").json()["mode"] == "live"


def test_unknown_and_inactive_assistants_are_404(api):
    Assistant.objects.create(slug="retired", name="Old", system_prompt="x", is_active=False)
    v1_error(api.get("/api/v1/assistants/nope"), 404, "not_found")
    v1_error(api.get("/api/v1/assistants/retired"), 404, "not_found")
    v1_error(post_json(api, "/api/v1/sessions", {"assistant": "retired"}), 404)


def test_default_assistant_has_the_original_prompt_and_defaults(assistant):
    assert assistant.system_prompt == (
        "You are a helpful AI assistant for a sample website. Provide friendly, helpful "
        "responses to user questions about services, products, or general information."
    )
    assert (assistant.temperature, assistant.max_output_tokens, assistant.context_messages) == (
        0.7,
        500,
        10,
    )


# --- Sessions -----------------------------------------------------------------------------


def test_create_session_returns_an_empty_conversation(api):
    response = post_json(api, "/api/v1/sessions", {"metadata": {"page": "/pricing"}})
    assert response.status_code == 201
    body = response.json()
    assert body["assistant"] == "default"
    assert body["messages"] == [] and body["has_more"] is False
    session = Session.objects.get(public_id=body["id"])
    assert session.metadata == {"page": "/pricing"}
    assert len(body["id"]) >= 22  # at least 128 bits, URL-safe
    assert body["id"] != str(session.pk)


def test_session_ids_are_long_random_and_url_safe(api):
    ids = {new_session(api) for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 32 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)  # 192 bits


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": "page"},
        {"metadata": {"blob": "x" * 5000}},
        {"assistant": "not a slug!"},
        {"assistant": 5},
    ],
)
def test_create_session_validates_input(api, body):
    v1_error(post_json(api, "/api/v1/sessions", body), 400)


def test_nul_in_session_metadata_is_stored_as_a_replacement_character(api):
    metadata = {"title\x00": ["Shop\x00", {"k": "a\x00b"}], "n": 1}
    response = post_json(api, "/api/v1/sessions", {"metadata": metadata})
    assert response.status_code == 201, response.content
    stored = Session.objects.get(public_id=response.json()["id"]).metadata
    assert stored == {"title\ufffd": ["Shop\ufffd", {"k": "a\ufffdb"}], "n": 1}


def test_create_session_without_body_uses_the_default_assistant(api):
    response = api.generic("POST", "/api/v1/sessions")
    assert response.status_code == 201
    assert response.json()["assistant"] == "default"


def test_client_ip_is_stored_only_as_a_keyed_hash(api, settings):
    session = Session.objects.get(public_id=new_session(api))
    stored = json.dumps(list(Session.objects.values().filter(pk=session.pk)), default=str)
    assert "127.0.0.1" not in stored
    assert session.ip_hash == ip_hash("127.0.0.1")
    assert session.ip_hash != hashlib.sha256(b"127.0.0.1").hexdigest()  # not a plain hash
    settings.SECRET_KEY = "another-secret-key-" + "y" * 50
    assert ip_hash("127.0.0.1") != session.ip_hash  # keyed by the secret


def stored_ip_hash(response) -> str:
    return Session.objects.get(public_id=response.json()["id"]).ip_hash


def test_forwarded_for_is_ignored_without_trusted_proxies(api):
    spoofed = post_json(api, "/api/v1/sessions", {}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert stored_ip_hash(spoofed) == ip_hash("127.0.0.1")  # REMOTE_ADDR


@pytest.mark.parametrize(
    ("proxies", "forwarded", "client"),
    [
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the left entry is the client's claim
        (2, "198.51.100.1, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "127.0.0.1"),  # fewer hops than proxies: the header is not trusted
        (1, "not-an-ip", "127.0.0.1"),
    ],
)
def test_forwarded_for_counts_only_trusted_proxies(api, settings, proxies, forwarded, client):
    settings.CHATKIT_TRUSTED_PROXIES = proxies
    response = post_json(api, "/api/v1/sessions", {}, HTTP_X_FORWARDED_FOR=forwarded)
    assert stored_ip_hash(response) == ip_hash(client)


def test_get_session_pages_back_through_history(api, session):
    messages_add(session, 120)
    first = api.get(f"/api/v1/sessions/{session.public_id}").json()
    assert [m["seq"] for m in first["messages"]] == list(range(71, 121))
    assert first["has_more"] is True

    second = api.get(f"/api/v1/sessions/{session.public_id}?before=71").json()
    assert [m["seq"] for m in second["messages"]] == list(range(21, 71))
    last = api.get(f"/api/v1/sessions/{session.public_id}?before=21").json()
    assert [m["seq"] for m in last["messages"]] == list(range(1, 21))
    assert last["has_more"] is False


@pytest.mark.parametrize(
    "before",
    [
        "abc",
        "0",
        "-3",
        "1.5",
        "",
        " 3",
        "3 ",
        "+3",
        "03",
        "\u0663",
        "\uff13",
        "3\n",
        "1" * 5000,
        "2147483648",
    ],
)
def test_get_session_rejects_bad_page_cursor(api, session, before):
    response = api.get(f"/api/v1/sessions/{session.public_id}", {"before": before})
    assert "before" in v1_error(response, 400, "invalid")["fields"]


def test_get_session_rejects_a_repeated_page_cursor(api, session):
    messages_add(session, 10)
    response = api.get(f"/api/v1/sessions/{session.public_id}", {"before": ["5", "3"]})
    assert v1_error(response, 400)["fields"] == {"before": ["Give this parameter once."]}


def test_get_session_takes_the_largest_page_cursor(api, session):
    messages_add(session, 2)
    response = api.get(f"/api/v1/sessions/{session.public_id}", {"before": "2147483647"})
    assert [m["seq"] for m in response.json()["messages"]] == [1, 2]


def test_message_shape(api, session):
    messages_add(session, 2)
    Message.objects.filter(seq=2).update(
        model="m1",
        prompt_tokens=12,
        completion_tokens=3,
        ttft_ms=40,
        duration_ms=90,
        finish_reason="stop",
        feedback_rating="down",
        feedback_comment="wrong",
    )
    user, reply = api.get(f"/api/v1/sessions/{session.public_id}").json()["messages"]
    assert user == {
        "seq": 1,
        "role": "user",
        "content": "message 1",
        "status": "complete",
        "created_at": user["created_at"],
        "model": None,
        "usage": None,
        "ttft_ms": None,
        "duration_ms": None,
        "finish_reason": None,
        "feedback": None,
    }
    assert reply["model"] == "m1"
    assert reply["usage"] == {"prompt_tokens": 12, "completion_tokens": 3}
    assert (reply["ttft_ms"], reply["duration_ms"], reply["finish_reason"]) == (40, 90, "stop")
    assert reply["feedback"] == {"rating": "down", "comment": "wrong"}
    stored = Message.objects.get(seq=1).created_at
    assert datetime.fromisoformat(user["created_at"]) == stored and user["created_at"][-1] == "Z"


@pytest.mark.parametrize(
    "session_id",
    [
        "A" * 32,  # well-formed, unknown
        "1",  # a database primary key
        "../admin",
        "x" * 65,
        "%00",
    ],
)
def test_unknown_and_foreign_session_ids_are_404(api, session, session_id):
    for response in (
        api.get(f"/api/v1/sessions/{session_id}"),
        api.delete(f"/api/v1/sessions/{session_id}"),
        post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "hi"}),
        post_json(api, f"/api/v1/sessions/{session_id}/messages/1/feedback", {"rating": "up"}),
    ):
        v1_error(response, 404)


def test_a_nearly_right_session_id_is_404(api, session):
    other = session.public_id[:-1] + ("A" if session.public_id[-1] != "A" else "B")
    v1_error(api.get(f"/api/v1/sessions/{other}"), 404, "not_found")


def test_delete_removes_the_conversation_from_the_database(api, session):
    messages_add(session, 6)
    response = api.delete(f"/api/v1/sessions/{session.public_id}")
    assert response.status_code == 204
    assert not Session.objects.filter(pk=session.pk).exists()
    assert not Message.objects.filter(session_id=session.pk).exists()
    v1_error(api.get(f"/api/v1/sessions/{session.public_id}"), 404)


def test_delete_while_a_reply_is_written_is_409(api, session):
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    Message.objects.create(session=session, seq=2, role="assistant", status="streaming")
    v1_error(api.delete(f"/api/v1/sessions/{session.public_id}"), 409, "reply_in_progress")
    assert Session.objects.filter(pk=session.pk).exists()


# --- Messages -----------------------------------------------------------------------------


def test_post_message_stores_the_turn(api, fake_llm):
    fake_llm.configure(reply="Hello, visitor!")
    session_id = new_session(api)

    response = post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "  Hi  "})

    assert response.status_code == 201
    body = response.json()
    user, reply = body["user_message"], body["assistant_message"]
    assert (user["seq"], user["role"], user["content"]) == (1, "user", "Hi")
    assert (reply["seq"], reply["role"], reply["content"]) == (2, "assistant", "Hello, visitor!")
    assert reply["status"] == "complete"
    assert reply["model"] == "fake-model"
    assert reply["finish_reason"] == "stop"
    assert reply["usage"]["completion_tokens"] == 2
    assert reply["usage"]["prompt_tokens"] > 0
    assert reply["ttft_ms"] is not None and reply["duration_ms"] >= reply["ttft_ms"]
    stored = Message.objects.get(session__public_id=session_id, seq=2)
    assert stored.content == "Hello, visitor!" and stored.status == "complete"
    session = Session.objects.get(public_id=session_id)
    assert session.title == "Hi"


def test_the_model_sees_the_system_prompt_and_the_last_n_messages(api, fake_llm, assistant):
    assistant.context_messages = 3
    assistant.system_prompt = "Be brief."
    assistant.temperature = 0.2
    assistant.max_output_tokens = 77
    assistant.save()
    session_id = new_session(api)
    for question in ["one", "two", "three"]:
        post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": question})

    sent = fake_llm.last_request["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "Echo: two"},
        {"role": "user", "content": "three"},
    ]
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 77
    assert sent["model"] == "fake-model"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


def test_assistant_model_overrides_the_default(api, fake_llm, assistant):
    assistant.model = "special-model"
    assistant.save()
    session_id = new_session(api)
    reply = post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "hi"}).json()
    assert fake_llm.last_request["body"]["model"] == "special-model"
    assert reply["assistant_message"]["model"] == "special-model"


def test_reply_cut_short_by_max_tokens_says_length(api, fake_llm, assistant):
    assistant.max_output_tokens = 3
    assistant.save()
    fake_llm.configure(reply="one two three four five")
    session_id = new_session(api)
    reply = post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "hi"}).json()
    assert reply["assistant_message"]["content"] == "one two three "
    assert reply["assistant_message"]["finish_reason"] == "length"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"content": ""},
        {"content": "  \t\n "},
        {"content": "\u3000\x1c\x85\u2028"},  # spaces beyond ASCII's are trimmed too
        {"content": "a\x00b"},
        {"content": "a" * 1001},
        {"content": 5},
        {"content": True},
        {"content": None},
        {"content": {"text": "hi"}},
        {"content": "hi", "stream": "maybe"},
    ],
)
def test_post_message_rejects_bad_input(api, session, body):
    v1_error(post_json(api, f"/api/v1/sessions/{session.public_id}/messages", body), 400)
    assert not Message.objects.exists()


def test_message_limit_counts_after_trimming(api, session):
    content = "  " + "a" * 1000 + "  "
    response = post_json(
        api, f"/api/v1/sessions/{session.public_id}/messages", {"content": content}
    )
    assert response.status_code == 201


def test_message_limit_follows_the_setting(api, session, settings):
    settings.CHATKIT_MAX_MESSAGE_CHARS = 10
    path = f"/api/v1/sessions/{session.public_id}/messages"
    v1_error(post_json(api, path, {"content": "a" * 11}), 400)
    assert post_json(api, path, {"content": "a" * 10}).status_code == 201


def test_a_second_message_while_a_reply_is_written_is_409(api, session):
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    Message.objects.create(session=session, seq=2, role="assistant", status="streaming")
    path = f"/api/v1/sessions/{session.public_id}/messages"

    v1_error(post_json(api, path, {"content": "again"}), 409, "reply_in_progress")
    seed_error(post_json(api, "/api/chat", {"sessionId": session.public_id, "message": "x"}), 409)
    assert session.messages.count() == 2


def test_a_reply_abandoned_by_a_dead_process_does_not_block(api, session, settings):
    settings.CHATKIT_REPLY_TIMEOUT = 60
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    stuck = Message.objects.create(session=session, seq=2, role="assistant", status="streaming")
    Message.objects.filter(pk=stuck.pk).update(created_at=stuck.created_at.replace(year=2000))

    response = post_json(api, f"/api/v1/sessions/{session.public_id}/messages", {"content": "hi"})

    assert response.status_code == 201
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_code) == ("interrupted", "abandoned")


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"fault": "status", "fault_status": 500}, 502, "upstream_error"),
        ({"fault": "status", "fault_status": 503}, 502, "upstream_error"),
        ({"fault": "status", "fault_status": 429}, 503, "upstream_rate_limited"),
        ({"fault": "status", "fault_status": 400}, 502, "upstream_rejected"),
        ({"fault": "drop"}, 502, "upstream_unreachable"),
        ({"fault": "cut", "cut_after": 2}, 502, "upstream_stream_failed"),
        ({"fault": "malformed", "malformed_after": 1}, 502, "upstream_stream_failed"),
    ],
)
def test_upstream_failures_are_json_errors_and_the_next_turn_works(
    api, fake_llm, fault, status, code
):
    fake_llm.configure(reply="Fine answer here", fault_count=1, **fault)
    session_id = new_session(api)
    path = f"/api/v1/sessions/{session_id}/messages"

    error = v1_error(post_json(api, path, {"content": "first"}), status, code)
    assert isinstance(error["retryable"], bool)

    user, reply = Message.objects.filter(session__public_id=session_id).order_by("seq")
    assert (user.content, user.status) == ("first", "complete")
    assert (reply.status, reply.error_code) == ("error", code)

    retry = post_json(api, path, {"content": "second"})
    assert retry.status_code == 201
    assert retry.json()["assistant_message"]["content"] == "Fine answer here"


def test_upstream_rate_limit_tells_when_to_retry(api, fake_llm):
    fake_llm.configure(fault="status", fault_status=429, fault_count=1)
    session_id = new_session(api)
    response = post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "hi"})
    v1_error(response, 503, "upstream_rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_upstream_timeout_is_504(api, fake_llm, settings):
    settings.OPENAI_TIMEOUT = 0.5
    fake_llm.configure(fault="hang", fault_count=1)
    session_id = new_session(api)
    path = f"/api/v1/sessions/{session_id}/messages"

    v1_error(post_json(api, path, {"content": "hello?"}), 504, "upstream_timeout")
    assert fake_llm.wait_for_disconnect(5)
    assert post_json(api, path, {"content": "again"}).status_code == 201


def test_unreachable_server_is_502(api, settings, unused_tcp_port):
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{unused_tcp_port}/v1"
    session_id = new_session(api)
    error = v1_error(
        post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "hi"}),
        502,
        "upstream_unreachable",
    )
    assert error["retryable"] is True


def test_seed_chat_reports_upstream_failure_in_its_shape(api, fake_llm):
    fake_llm.configure(fault="status", fault_status=500, fault_count=1)
    session_id = post_json(api, "/api/create-session").json()["sessionId"]
    seed_error(post_json(api, "/api/chat", {"sessionId": session_id, "message": "hi"}), 502)


def test_queries_per_turn_do_not_grow_with_history(api, session):
    path = f"/api/v1/sessions/{session.public_id}/messages"

    def queries_for_one_turn() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert post_json(api, path, {"content": "hi"}).status_code == 201
        return len(captured)

    messages_add(session, 2)
    short = queries_for_one_turn()
    messages_add(session, 196, start=5)
    long = queries_for_one_turn()
    assert short == long
    assert short <= 12


# --- Feedback -----------------------------------------------------------------------------


def test_feedback_is_recorded_and_cleared(api, session):
    messages_add(session, 2)
    path = f"/api/v1/sessions/{session.public_id}/messages/2/feedback"

    body = post_json(api, path, {"rating": "up", "comment": "spot on"}).json()
    assert body["feedback"] == {"rating": "up", "comment": "spot on"}
    body = post_json(api, path, {"rating": None}).json()
    assert body["feedback"] is None
    message = Message.objects.get(session=session, seq=2)
    assert (message.feedback_rating, message.feedback_comment) == ("", "")


def test_feedback_on_a_visitor_message_is_404_not_a_reply(api, session):
    messages_add(session, 2)
    v1_error(
        post_json(
            api, f"/api/v1/sessions/{session.public_id}/messages/1/feedback", {"rating": "up"}
        ),
        404,
        "not_a_reply",
    )
    assert Message.objects.get(session=session, seq=1).feedback_rating == ""


@pytest.mark.parametrize(
    "body", [{}, {"rating": "meh"}, {"rating": 1}, {"rating": "up", "comment": "x" * 1001}]
)
def test_feedback_validates_input(api, session, body):
    messages_add(session, 2)
    path = f"/api/v1/sessions/{session.public_id}/messages/2/feedback"
    v1_error(post_json(api, path, body), 400)


def test_feedback_on_an_unknown_message_is_404(api, session):
    path = f"/api/v1/sessions/{session.public_id}/messages/9/feedback"
    v1_error(post_json(api, path, {"rating": "up"}), 404)


# --- Error shapes and the edges of HTTP -----------------------------------------------------


def test_logged_in_staff_is_treated_like_any_visitor(db):
    staff = get_user_model().objects.create_superuser("staff", "s@example.com", "pw")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)

    created = post_json(browser, "/api/v1/sessions")
    assert created.status_code == 201
    session_id = created.json()["id"]
    turn = post_json(browser, f"/api/v1/sessions/{session_id}/messages", {"content": "hi"})
    assert turn.status_code == 201
    seed = post_json(browser, "/api/create-session")
    assert seed.status_code == 200
    assert browser.delete(f"/api/v1/sessions/{session_id}").status_code == 204


def test_unknown_api_urls_are_json_404(api):
    for path in ["/api/nothing", "/api/v1/sessions/abc/extra/path", "/api/", "/health/nope"]:
        for method in (api.get, api.post, api.delete):
            v1_error(method(path), 404, "not_found")


NEWLINE_PATHS = [
    "/api/v1/assistants/a%0Ab",
    "/api/nothing%0A",
    "/health/%0Anope",
    "/api/v1/sessions/abc/extra%0A/path",
]


@pytest.mark.parametrize("path", NEWLINE_PATHS)
def test_paths_with_a_newline_resolve_to_the_json_404(path):
    assert resolve(unquote(path)).func is errors.no_such_endpoint


@pytest.mark.parametrize("path", NEWLINE_PATHS)
def test_paths_with_a_newline_are_json_404_even_under_debug(api, settings, path):
    # Django's DEBUG page answers what no route matches; DEBUG is read per request there.
    settings.DEBUG = True
    v1_error(api.get(path), 404, "not_found")


def test_the_404_for_a_path_with_a_newline_is_readable_cross_origin(api):
    response = api.get("/api/v1/assistants/a%0Ab", HTTP_ORIGIN="https://shop.example")
    v1_error(response, 404, "not_found")
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"


def test_wrong_method_is_json_405(api, session):
    v1_error(api.put(f"/api/v1/sessions/{session.public_id}"), 405, "method_not_allowed")
    v1_error(api.put("/api/v1/sessions"), 405, "method_not_allowed")
    v1_error(api.post("/health"), 405, "method_not_allowed")


def test_non_json_body_is_415(api, session):
    response = api.post(
        f"/api/v1/sessions/{session.public_id}/messages", "content=hi", content_type="text/plain"
    )
    v1_error(response, 415, "unsupported_media_type")


def test_body_over_the_default_cap_is_413(api, session):
    body = json.dumps({"content": "hi", "padding": "x" * 70_000})
    for path in ["/api/chat", "/api/v1/sessions", f"/api/v1/sessions/{session.public_id}/messages"]:
        response = api.post(path, body, content_type="application/json")
        assert response.status_code == 413, (path, response.content)


@pytest.mark.parametrize("debug", [False, True])
def test_body_over_djangos_own_limit_is_413_json(api, session, settings, debug):
    # Past DATA_UPLOAD_MAX_MEMORY_SIZE Django itself refuses to read the body; even with
    # DEBUG on, the answer is JSON, not Django's page.
    settings.DEBUG = debug
    body = json.dumps({"content": "x" * 3_000_000})
    for path in ["/api/chat", "/api/v1/sessions", f"/api/v1/sessions/{session.public_id}/messages"]:
        response = api.post(path, body, content_type="application/json")
        assert response.status_code == 413, (path, response.content)
        assert response["Content-Type"] == "application/json"


def test_body_over_the_cap_is_413(api, session, settings):
    settings.CHATKIT_MAX_BODY_BYTES = 1024
    body = json.dumps({"content": "hi", "padding": "x" * 2000})
    response = api.post(
        f"/api/v1/sessions/{session.public_id}/messages", body, content_type="application/json"
    )
    v1_error(response, 413, "payload_too_large")


def test_malformed_json_is_400(api, session):
    for raw in ["{", "nope", '{"content": NaN}', b"\xff\xfe"]:
        response = api.post(
            f"/api/v1/sessions/{session.public_id}/messages", raw, content_type="application/json"
        )
        v1_error(response, 400, "parse_error")


def test_database_failure_is_503_json(api, session):
    from django.db import OperationalError

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection pool exhausted")

    with connection.execute_wrapper(refuse):
        response = api.get(f"/api/v1/sessions/{session.public_id}")
    v1_error(response, 503, "database_unavailable")
    assert response["Retry-After"]


def test_database_failure_on_the_async_chat_path_is_503_json(api, session):
    from django.db import OperationalError

    def refuse(execute, sql, params, many, context):
        raise OperationalError("couldn't get a connection after 10.00 sec")

    with connection.execute_wrapper(refuse):
        v1_error(
            post_json(api, f"/api/v1/sessions/{session.public_id}/messages", {"content": "hi"}),
            503,
            "database_unavailable",
        )
        seed_error(
            post_json(api, "/api/chat", {"sessionId": session.public_id, "message": "x"}), 503
        )


def test_unexpected_errors_are_json_500(api, session):
    def explode(execute, sql, params, many, context):
        raise ZeroDivisionError("a bug")

    failing = Client(raise_request_exception=False)
    with connection.execute_wrapper(explode):
        response = failing.get(f"/api/v1/sessions/{session.public_id}")
    v1_error(response, 500, "server_error")


# --- Origins ------------------------------------------------------------------------------


def test_an_assistant_can_narrow_its_origins(api, assistant, session):
    assistant.allowed_origins = ["https://shop.example"]
    assistant.save()
    other = {"HTTP_ORIGIN": "https://blog.example"}
    own = {"HTTP_ORIGIN": "https://shop.example"}

    v1_error(post_json(api, "/api/v1/sessions", {}, **other), 403, "origin_not_allowed")
    v1_error(api.get(f"/api/v1/sessions/{session.public_id}", **other), 403)
    v1_error(
        post_json(api, f"/api/v1/sessions/{session.public_id}/messages", {"content": "x"}, **other),
        403,
    )
    assert post_json(api, "/api/v1/sessions", {}, **own).status_code == 201
    # Servers and curl send no Origin; they are allowed (and rate-limited like anyone).
    assert post_json(api, "/api/v1/sessions", {}).status_code == 201


def test_cors_allows_listed_sites_only(api):
    allowed = api.options(
        "/api/v1/sessions",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example"
    refused = api.options(
        "/api/v1/sessions",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in refused


# --- Nothing a client sends is a 500 ------------------------------------------------------


NASTY_BODIES = [
    b"",
    b"null",
    b"[]",
    b"0",
    b'"text"',
    b'{"content": {"$gt": ""}}',
    b'{"content": "\\u0000"}',
    b'{"content": "' + "é".encode() * 999 + b'"}',
    b'{"rating": ["up"]}',
    b'{"metadata": [1, 2]}',
    b'{"assistant": null}',
    b'{"sessionId": null, "message": null}',
    b"\x00\x01",
    b'{"a":' * 200 + b"1" + b"}" * 200,
    b"[" * 20000,
    b'{"metadata": {"k": "\\u0000"}}',
    b'{"metadata": {"k": 1e400}, "content": 1e400, "rating": 1e400}',
    b'{"metadata": {"k": "\\udfff"}, "content": "\\udfff", "message": "\\ud800x"}',
    b'{"content": "hi", "stream": 1e999}',
]


@pytest.mark.parametrize("raw", NASTY_BODIES)
def test_no_client_input_produces_a_500(api, session, raw):
    messages_add(session, 2)
    sid = session.public_id
    for path in [
        "/api/create-session",
        "/api/chat",
        "/api/v1/sessions",
        f"/api/v1/sessions/{sid}/messages",
        f"/api/v1/sessions/{sid}/messages/2/feedback",
    ]:
        response = api.post(path, raw, content_type="application/json")
        assert response.status_code < 500, (path, raw, response.content)
        assert response["Content-Type"] == "application/json"


# --- OpenAPI ------------------------------------------------------------------------------


def test_the_schema_describes_every_endpoint(api):
    response = api.get("/api/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    assert set(paths) >= {
        "/health",
        "/health/ready",
        "/api/create-session",
        "/api/chat",
        "/api/v1/assistants/{slug}",
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/{session_id}/messages",
        "/api/v1/sessions/{session_id}/messages/{seq}/feedback",
    }
    turn = paths["/api/v1/sessions/{session_id}/messages"]["post"]
    assert {"201", "409", "502", "504"} <= set(turn["responses"])
    assert "text/event-stream" in turn["responses"]["200"]["content"]
    assert "`done`" in turn["description"] and "`error`" in turn["description"]
    stream = turn["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = response.json()["components"]["schemas"][stream.rsplit("/", 1)[-1]]
    assert request["properties"]["stream"]["type"] == "boolean"


def test_the_docs_page_uses_no_cdn(api):
    page = api.get("/api/docs").content.decode()
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page


@pytest.mark.parametrize("stored", [5, "abc", {"a": 1}, ["ok", 3, ""]])
def test_junk_starter_prompts_stored_past_the_validators_do_not_break_the_config(
    api, assistant, stored
):
    Assistant.objects.filter(pk=assistant.pk).update(starter_prompts=stored)
    response = api.get("/api/v1/assistants/default")
    assert response.status_code == 200
    assert response.json()["starter_prompts"] in ([], ["ok"])


def test_ready_stays_ready_with_the_cache_degraded(api, settings):
    # Rate limits fail open without the cache: one Redis outage must not take every
    # instance out of the load balancer.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "degraded"}}


def test_the_config_carries_the_unavailable_message(api, assistant):
    assistant.unavailable_message = "Write to help@shop.example instead."
    assistant.save()
    body = api.get("/api/v1/assistants/default").json()
    assert body["unavailable_message"] == "Write to help@shop.example instead."


def test_ready_says_unavailable_while_the_process_drains(api, monkeypatch):
    from chatkit import draining

    monkeypatch.setattr(draining, "_deadline", 1.0)  # as `serve` sets it on SIGTERM
    response = api.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["server"] == "draining"
    assert api.get("/health").status_code == 200  # alive: it finishes what it runs

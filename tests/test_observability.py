"""Operators' view: one log line per turn (text or JSON), and Prometheus metrics."""

import json
import logging
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from chatkit.logging import JsonFormatter
from conversations.models import Message
from conversations.policy import ip_hash
from tests.factories import reply_streaming
from tests.helpers import post_json
from tests.live import SERVE, UVICORN

TOKEN = "metrics-token-" + "m" * 32


def turn_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if hasattr(record, "turn")]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition; 0 when it is not there yet."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def scrape(client: Client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.content.decode()


# --- Logs --------------------------------------------------------------------------------


def test_each_turn_is_logged_once_with_its_numbers_and_no_text(api, session, fake_llm, caplog):
    fake_llm.configure(reply="A secret answer about pineapples.")
    caplog.set_level(logging.INFO, logger="conversations")
    path = f"/api/v1/sessions/{session.public_id}/messages"
    assert post_json(api, path, {"content": "My pineapple question"}).status_code == 201

    [record] = turn_records(caplog)
    turn = record.turn
    assert turn["assistant"] == "default" and turn["conversation"] == session.pk
    assert turn["status"] == "complete" and turn["seq"] == 2
    assert turn["prompt_tokens"] > 0 and turn["completion_tokens"] == 5
    assert turn["ttft_ms"] is not None and turn["duration_ms"] is not None
    assert "question" not in turn and "reply" not in turn
    logged = caplog.text + json.dumps(turn)
    assert "pineapple" not in logged and session.public_id not in logged


def test_a_reply_abandoned_by_a_dead_process_is_logged_as_it_is_ended(
    api, session, fake_llm, caplog, settings
):
    settings.CHATKIT_REPLY_TIMEOUT = 60
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    left = reply_streaming(session, started_ago=timedelta(minutes=5))
    caplog.set_level(logging.INFO, logger="conversations")
    path = f"/api/v1/sessions/{session.public_id}/messages"

    assert post_json(api, path, {"content": "anyone?"}).status_code == 201

    abandoned, answered = (record.turn for record in turn_records(caplog))
    assert (abandoned["seq"], abandoned["status"], abandoned["error"]) == (
        left.seq,
        "interrupted",
        "abandoned",
    )
    assert (answered["seq"], answered["status"]) == (4, "complete")


def test_content_is_logged_only_when_asked_for(api, session, fake_llm, caplog, settings):
    settings.CHATKIT_LOG_CONTENT = True
    fake_llm.configure(reply="About pineapples.")
    caplog.set_level(logging.INFO, logger="conversations")
    path = f"/api/v1/sessions/{session.public_id}/messages"
    post_json(api, path, {"content": 'My "pineapple" question'})

    [record] = turn_records(caplog)
    assert record.turn["question"] == 'My "pineapple" question'
    assert record.turn["reply"] == "About pineapples."
    assert 'question="My \\"pineapple\\" question"' in record.getMessage()


def test_the_json_format_is_one_object_per_line():
    record = logging.LogRecord(
        "conversations.services", logging.INFO, "", 1, "turn %s", ("x",), None
    )
    record.turn = {"assistant": "default", "status": "complete", "ttft_ms": 12}
    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "conversations.services"
    assert entry["message"] == "turn x" and entry["turn"]["ttft_ms"] == 12
    assert entry["time"].endswith("+00:00")


LOG_CONFIG = ("--log-config", "chatkit/uvicorn-logging.json")


def json_log(server) -> list[dict]:
    """Every line the stopped server wrote, each parsed as JSON (and so failing if not)."""
    return [json.loads(line) for line in server.output if line.strip()]


def chat_once(server) -> str:
    session_id = httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]
    turn = httpx.post(f"{server.url}/api/v1/sessions/{session_id}/messages", json={"content": "hi"})
    assert turn.status_code == 201
    return session_id


@pytest.mark.parametrize(
    "start",
    [
        pytest.param({}, id="uvicorn"),
        pytest.param({"options": ("--workers", "2", *LOG_CONFIG)}, id="uvicorn-workers"),
        pytest.param({"options": ("--workers", "2"), "command": SERVE}, id="serve"),
    ],
)
def test_a_server_with_json_logs_writes_only_json_lines(
    model_server_factory, default_assistant, start
):
    server = model_server_factory(LOG_FORMAT="json", **start)
    session_id = chat_once(server)
    httpx.delete(f"{server.url}/api/v1/sessions/{session_id}")
    httpx.delete(f"{server.url}/api/v1/sessions/{session_id}")  # 404: Django logs it
    assert server.wait_for_output("Not Found: /api/v1/sessions/<id>")
    server.stop()  # the output is complete, shutdown lines included

    entries = json_log(server)
    messages = [entry["message"] for entry in entries]
    turns = [entry for entry in entries if "turn" in entry]
    assert len(turns) == 1 and turns[0]["turn"]["status"] == "complete"
    assert not any("HTTP Request" in message for message in messages)  # the model's SDK
    assert any("Uvicorn running on" in message for message in messages)
    assert any(message.startswith("Finished server process") for message in messages)
    if "options" in start:  # the parent process's lines too
        assert any(message.startswith("Stopping parent process") for message in messages)
    access = [entry["message"] for entry in entries if entry["logger"] == "uvicorn.access"]
    assert len(access) == 4 and all(
        line.startswith(f"{ip_hash('127.0.0.1')} - ") for line in access
    )
    assert "127.0.0.1:" not in "".join(access)
    assert session_id not in "".join(server.output)


@pytest.mark.parametrize("program", [UVICORN, SERVE], ids=["uvicorn", "serve"])
def test_no_access_log_means_no_access_lines(model_server_factory, default_assistant, program):
    server = model_server_factory(LOG_FORMAT="json", options=("--no-access-log",), command=program)
    chat_once(server)
    assert server.wait_for_output('"turn"')
    server.stop()

    loggers = {entry["logger"] for entry in json_log(server)}
    assert "uvicorn.access" not in loggers and "conversations.services" in loggers


def test_debug_logs_the_model_calls_too(model_server_factory, default_assistant):
    server = model_server_factory(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    chat_once(server)
    assert server.wait_for_output('"turn"')
    server.stop()

    assert any("HTTP Request: POST" in entry["message"] for entry in json_log(server))


# --- Metrics -----------------------------------------------------------------------------


def test_metrics_do_not_exist_without_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_metrics_need_the_bearer_token(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"chatkit" not in response.content


def test_metrics_count_turns_errors_tokens_and_timings(api, session, fake_llm, client, settings):
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    path = f"/api/v1/sessions/{session.public_id}/messages"
    fake_llm.configure(reply_tokens=4)
    assert post_json(api, path, {"content": "one"}).status_code == 201
    fake_llm.configure(fault="status", fault_status=500, fault_count=1)
    assert post_json(api, path, {"content": "two"}).status_code == 502
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("chatkit_turns_total", assistant="default", status="complete") == 1
    assert grew("chatkit_turns_total", assistant="default", status="error") == 1
    assert grew("chatkit_turn_errors_total", code="upstream_error") == 1
    assert grew("chatkit_tokens_total", assistant="default", kind="completion") == 4
    assert grew("chatkit_tokens_total", assistant="default", kind="prompt") > 0
    assert grew("chatkit_time_to_first_token_seconds_count", assistant="default") == 1
    assert grew("chatkit_turn_duration_seconds_count", assistant="default") == 2
    assert "chatkit_open_streams" in after


def test_metrics_add_up_across_worker_processes(
    live_server_factory, fake_server, default_assistant, tmp_path
):
    fake_server.reset()
    shared = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_TOKEN": TOKEN,
        "TEST_OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_server.base_url,
    }
    first, second = live_server_factory(**shared), live_server_factory(**shared)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for server in (first, second):
        session_id = httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]
        path = f"{server.url}/api/v1/sessions/{session_id}/messages"
        assert httpx.post(path, json={"content": "hi"}).status_code == 201

    fake_server.configure(fault="hang")  # a stream stays open on the first process
    session_id = httpx.post(f"{first.url}/api/v1/sessions", json={}).json()["id"]
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{first.url}/api/v1/sessions/{session_id}/messages",
            json={"content": "hi", "stream": True},
        ) as response,
    ):
        lines = response.iter_lines()  # held: dropping it would close the connection
        assert "event: message" in lines
        assert fake_server.wait_for_requests(3, 10)
        for server in (first, second):  # whichever process answers the scrape
            text = httpx.get(f"{server.url}/metrics", headers=auth).text
            assert metric(text, "chatkit_turns_total", status="complete") == 2
            assert metric(text, "chatkit_open_streams") == 1

    assert first.wait_for_output("status=interrupted")
    text = httpx.get(f"{second.url}/metrics", headers=auth).text
    assert metric(text, "chatkit_open_streams") == 0
    assert metric(text, "chatkit_turns_total", status="interrupted") == 1
    fake_server.reset()

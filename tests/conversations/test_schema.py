"""The OpenAPI schema tells the truth: what it documents is what the API answers.

`.ci/fuzz` checks the same against a live server with schemathesis; these pin each mismatch
it once found.
"""

import json
import re

import pytest
from django.test import AsyncClient
from django.urls.converters import SlugConverter
from jsonschema import Draft202012Validator

from conversations.exceptions import RateLimited
from tests.sse import parse_text

pytestmark = pytest.mark.django_db

SEED_CREATE_SESSION = ("/api/create-session", "post")
SEED_CHAT = ("/api/chat", "post")
SESSIONS = ("/api/v1/sessions", "post")
SESSION = ("/api/v1/sessions/{session_id}", "get")
MESSAGES = ("/api/v1/sessions/{session_id}/messages", "post")
FEEDBACK = ("/api/v1/sessions/{session_id}/messages/{seq}/feedback", "post")


@pytest.fixture
def schema(api) -> dict:
    response = api.get("/api/schema")
    assert response.status_code == 200
    return response.json()


def operation(schema: dict, path_and_method: tuple[str, str]) -> dict:
    path, method = path_and_method
    return schema["paths"][path][method]


def response_schema(schema: dict, path_and_method: tuple[str, str], status: int) -> dict:
    content = operation(schema, path_and_method)["responses"][str(status)]["content"]
    ref = content["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


@pytest.mark.parametrize(
    ("path_and_method", "statuses"),
    [(SEED_CREATE_SESSION, {"403", "404", "429"}), (SEED_CHAT, {"400", "404", "409", "429"})],
)
def test_seed_routes_document_their_errors_in_the_seeds_shape(schema, path_and_method, statuses):
    assert statuses <= set(operation(schema, path_and_method)["responses"])
    for status in statuses:
        error = response_schema(schema, path_and_method, int(status))
        assert error["properties"]["error"]["type"] == "string"


@pytest.mark.parametrize(
    ("path_and_method", "error"),
    [
        (SEED_CREATE_SESSION, RateLimited.message),
        (SEED_CHAT, RateLimited.message),
        (SESSIONS, {"code": "rate_limited", "message": RateLimited.message}),
        (MESSAGES, {"code": "rate_limited", "message": RateLimited.message}),
    ],
)
def test_operations_that_create_sessions_or_post_messages_document_429_with_retry_after(
    schema, path_and_method, error
):
    rate_limited = operation(schema, path_and_method)["responses"]["429"]
    assert rate_limited["headers"]["Retry-After"]["required"] is True
    assert rate_limited["headers"]["Retry-After"]["schema"]["type"] == "integer"
    (example,) = rate_limited["content"]["application/json"]["examples"].values()
    assert example["value"] == {"error": error}


def test_v1_errors_document_their_code_and_message(schema):
    error = response_schema(schema, MESSAGES, 429)
    detail = schema["components"]["schemas"][error["properties"]["error"]["$ref"].rsplit("/")[-1]]
    assert set(detail["required"]) == {"code", "message"}
    assert {"retryable", "fields"} <= set(detail["properties"])


@pytest.mark.parametrize(
    ("path_and_method", "status"),
    [(SESSION, "409"), (SESSION, "413"), (FEEDBACK, "502")],
)
def test_statuses_an_operation_never_answers_are_not_documented(schema, path_and_method, status):
    assert status not in operation(schema, path_and_method)["responses"]


def test_the_page_cursor_is_documented_as_a_whole_number_from_1(schema):
    (before,) = [p for p in operation(schema, SESSION)["parameters"] if p["name"] == "before"]
    assert before["in"] == "query" and not before.get("required")
    assert before["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


@pytest.mark.parametrize(
    ("component", "field"), [("MessageCreate", "content"), ("SeedChat", "message")]
)
def test_message_content_documents_length_and_a_non_space_character(
    api, settings, component, field
):
    settings.CHATKIT_MAX_MESSAGE_CHARS = 500
    content = api.get("/api/schema").json()["components"]["schemas"][component]["properties"][field]
    assert (content["minLength"], content["maxLength"]) == (1, 500)
    pattern = re.compile(content["pattern"])
    assert pattern.search(" x ") and pattern.search("x")
    assert not pattern.search("") and not pattern.search("\t \n") and not pattern.search("x\x00")


def test_the_content_pattern_calls_blank_exactly_what_the_server_trims(schema):
    # Every code point alone: the pattern takes it unless str.strip() would remove it or it is NUL.
    pattern = re.compile(
        schema["components"]["schemas"]["MessageCreate"]["properties"]["content"]["pattern"]
    )
    refused = [c for c in map(chr, range(0x110000)) if not pattern.search(c)]
    assert refused == [c for c in map(chr, range(0x110000)) if c.isspace() or c == "\x00"]


def test_strings_document_that_nul_is_refused(schema):
    comment = schema["components"]["schemas"]["FeedbackCreate"]["properties"]["comment"]
    # DRF's own shape for a field that may be blank: the pattern, or "".
    pattern, blank = comment["oneOf"]
    assert blank == {"type": "string", "maxLength": 0}
    assert re.search(pattern["pattern"], "  fine ") and not re.search(pattern["pattern"], "a\x00")


def test_feedback_documents_not_a_reply_as_its_404(schema):
    assert "not_a_reply" in operation(schema, FEEDBACK)["responses"]["404"]["description"]


def test_the_stream_is_documented_event_by_event(schema):
    stream = operation(schema, MESSAGES)["responses"]["200"]["content"]["text/event-stream"]
    events = {e["properties"]["event"]["enum"][0]: e for e in stream["schema"]["oneOf"]}
    assert set(events) == {"message", "delta", "done", "error"}
    for event in events.values():
        assert event["required"] == ["event", "data"]
        assert event["properties"]["data"]["contentMediaType"] == "application/json"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_executor_connections")
@pytest.mark.parametrize("fault", [None, {"fault": "status", "fault_status": 500}])
async def test_a_real_stream_matches_the_documented_events(fake_llm, session, fault):
    fake_llm.configure(reply_tokens=3, **(fault or {}))
    client = AsyncClient()
    schema = json.loads((await client.get("/api/schema")).content)
    response = await client.post(
        f"/api/v1/sessions/{session.public_id}/messages",
        data=json.dumps({"content": "Hello?", "stream": True}),
        content_type="application/json",
    )
    stream = operation(schema, MESSAGES)["responses"]["200"]["content"]["text/event-stream"]
    documented = {e["properties"]["event"]["enum"][0]: e for e in stream["schema"]["oneOf"]}

    events = parse_text(b"".join([part async for part in response.streaming_content]).decode())

    assert events[-1].name == ("error" if fault else "done")
    for event in events:
        event_schema = documented[event.name]["properties"]["data"]["contentSchema"]
        # The data's own schema, with the document's components for its $refs to resolve in.
        Draft202012Validator({**event_schema, "components": schema["components"]}).validate(
            event.data
        )


def test_the_assistant_slug_is_documented_as_the_url_takes_it(schema):
    (slug,) = operation(schema, ("/api/v1/assistants/{slug}", "get"))["parameters"]
    assert slug["schema"]["pattern"] == f"^{SlugConverter.regex}$"
    assert [e["value"] for e in slug["examples"].values()] == ["default"]

"""The OpenAPI schema's words for the views: descriptions, examples and documented errors.

The views carry these as decorators (`@schema.messages_post`), so that what an endpoint does
reads in the view and how it is documented reads here.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from conversations.api import serializers as s
from conversations.exceptions import RateLimited
from conversations.selectors import VISITOR_SESSIONS_PAGE_SIZE

# What each error status means; every operation lists the ones it can answer, in v1's shape
# or (the seed routes) in the seed's own `{"error": "text"}`.
ERROR_DESCRIPTIONS = {
    400: "The input is not valid; the message says which part.",
    401: "The visitor's identity token is not valid (v1 code `token_invalid`), has expired "
    "(`token_expired`: get a new one and try again), or is missing where the assistant's "
    "identity mode is `required` (`token_required`).",
    403: "This site (the request's `Origin`) may not use this assistant.",
    404: "No such session, message or assistant (an unknown and a foreign id alike).",
    409: "A reply is still being written in this conversation; wait for it to finish.",
    413: "The request body is larger than the server accepts.",
    415: "The request body is not `application/json` (a session is never started from a "
    "`text/plain` or form body).",
    429: "Too many requests (v1 code `rate_limited`), or the assistant's daily token budget is "
    "spent (`budget_exhausted`, until the next UTC midnight): try again after `Retry-After` "
    "seconds.",
    502: "The model failed or could not be reached; `retryable` says whether to try again.",
    503: "The database or the model is busy, or the server is stopping (v1 code "
    "`server_shutdown`, with `Retry-After`; another process answers the retry): try again in "
    "a moment.",
    504: "The model did not answer in time.",
}
RATE_LIMITED_EXAMPLES = {
    s.ErrorSerializer: {"error": {"code": RateLimited.code, "message": RateLimited.message}},
    s.SeedErrorSerializer: {"error": RateLimited.message},
}
# On every operation that can answer 429: when to try again.
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    required=True,
    description="Seconds to wait before trying again.",
)


# On every operation that can answer 401: the scheme that would be accepted.
WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[401],
    required=True,
    description="`Bearer`: send the visitor's identity token as `Authorization: Bearer`.",
)
# The operations that read the visitor's identity token: with one, or anonymous.
VISITOR_TOKEN = [{"visitorToken": []}, {}]


def errors(*statuses: int, shape=s.ErrorSerializer) -> dict:
    """The documented error responses for these statuses, in the route's error shape."""
    responses = {}
    for status in statuses:
        examples = []
        if status == 429:
            examples = [OpenApiExample("Rate limited", RATE_LIMITED_EXAMPLES[shape])]
        responses[status] = OpenApiResponse(
            shape, description=ERROR_DESCRIPTIONS[status], examples=examples
        )
    return responses


STREAM_DESCRIPTION = """\
With `"stream": true` the reply comes as Server-Sent Events, one JSON object per `data:` line:

- `message`: the visitor's message as stored (a Message, with its `seq`);
- `delta`: `{"text": "next piece"}`, as the model writes (many);
- then exactly one of `done` (the reply as stored: a Message with `status`, `usage`,
  `finish_reason`) or `error` (`{"code", "message", "retryable"}`; the partial reply is stored
  with status `error`).

A `: ping` comment line comes every 15 seconds while the model is silent. Whatever is known
before the stream starts (validation, 403, 404, 409, 413, 429) is an HTTP status instead. A client
that disconnects mid-reply leaves the reply stored as `interrupted` with its partial text.
"""

STREAM_EXAMPLE = (
    "event: message\n"
    'data: {"seq": 1, "role": "user", "content": "Hi", "status": "complete", ...}\n\n'
    "event: delta\n"
    'data: {"text": "Hello"}\n\n'
    "event: delta\n"
    'data: {"text": " there!"}\n\n'
    "event: done\n"
    'data: {"seq": 2, "role": "assistant", "content": "Hello there!", "status": "complete", '
    '"usage": {"prompt_tokens": 21, "completion_tokens": 3}, "finish_reason": "stop", ...}\n\n'
)


def _stream_event(name: str, data: dict, description: str) -> dict:
    # One Server-Sent Event, as OpenAPI 3.2 reads a `text/event-stream` schema without an
    # `itemSchema` (and schemathesis with it): the event's fields, its data a JSON document.
    return {
        "type": "object",
        "description": description,
        "properties": {
            "event": {"type": "string", "enum": [name]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
        "required": ["event", "data"],
    }


MESSAGE_REF = {"$ref": "#/components/schemas/Message"}  # MessageSerializer's component
STREAM_EVENT = {
    "oneOf": [
        _stream_event("message", MESSAGE_REF, "The visitor's message as stored, with its seq."),
        _stream_event(
            "delta",
            {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            "The next piece of the reply, as the model writes it (many).",
        ),
        _stream_event("done", MESSAGE_REF, "The reply as stored; the stream ends."),
        _stream_event(
            "error",
            {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "retryable": {"type": "boolean"},
                },
                "required": ["code", "message", "retryable"],
            },
            "The reply failed (stored with status `error`); the stream ends.",
        ),
    ]
}


def _readiness(name: str):
    # Fields of their own: DRF binds a field to the one serializer it is put in.
    return inline_serializer(
        name, {"status": serializers.CharField(), "checks": serializers.DictField()}
    )


health = extend_schema(
    tags=["health"],
    responses=inline_serializer(
        "Health",
        {
            "status": serializers.CharField(),
            "timestamp": serializers.DateTimeField(),
            "uptime": serializers.FloatField(),
        },
    ),
)
ready = extend_schema(
    tags=["health"],
    responses={
        200: _readiness("Ready"),
        503: _readiness("NotReady"),
    },
)
seed_create_session = extend_schema(
    tags=["seed"],
    request=None,
    auth=VISITOR_TOKEN,
    parameters=[RETRY_AFTER, WWW_AUTHENTICATE],
    responses={
        200: s.SeedSessionSerializer,
        **errors(401, 403, 404, 413, 415, 429, 503, shape=s.SeedErrorSerializer),
    },
    summary="Create a session (original ChatKit format)",
)
seed_chat = extend_schema(
    tags=["seed"],
    request=s.SeedChatSerializer,
    auth=VISITOR_TOKEN,
    parameters=[RETRY_AFTER, WWW_AUTHENTICATE],
    responses={
        200: s.SeedChatResponseSerializer,
        **errors(
            400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504, shape=s.SeedErrorSerializer
        ),
    },
    summary="Send a message and get the reply (original ChatKit format)",
)
assistant_config = extend_schema(
    tags=["v1"],
    parameters=[
        OpenApiParameter(
            "slug",
            OpenApiTypes.STR,
            OpenApiParameter.PATH,
            pattern=r"^[-a-zA-Z0-9_]+$",  # the URL's slug converter: anything else is a 404
            examples=[OpenApiExample("The assistant made at installation", value="default")],
        )
    ],
    responses={200: s.AssistantConfigSerializer, **errors(404, 503)},
)
sessions_list = extend_schema(
    tags=["v1"],
    operation_id="api_v1_sessions_list",
    auth=[{"visitorToken": []}],
    parameters=[s.SessionListQuerySerializer, WWW_AUTHENTICATE],
    description="A signed-in visitor's conversations with an assistant, newest activity "
    f"first, {VISITOR_SESSIONS_PAGE_SIZE} a page. Needs the visitor's identity token "
    "(401 `token_required` without one, or when the assistant's identity mode is `off`).",
    responses={
        200: s.VisitorSessionListSerializer,
        **errors(400, 401, 403, 404, 503),
        404: OpenApiResponse(
            s.ErrorSerializer,
            description="No such assistant, or no such page (a `cursor` this endpoint did not "
            "give).",
        ),
    },
)
sessions_post = extend_schema(
    tags=["v1"],
    request=s.SessionCreateSerializer,
    auth=VISITOR_TOKEN,
    parameters=[RETRY_AFTER, WWW_AUTHENTICATE],
    responses={201: s.SessionSerializer, **errors(400, 401, 403, 404, 413, 415, 429, 503)},
)
session_get = extend_schema(
    tags=["v1"],
    auth=VISITOR_TOKEN,
    parameters=[s.SessionPageSerializer, WWW_AUTHENTICATE],
    responses={200: s.SessionSerializer, **errors(400, 401, 403, 404, 503)},
)
session_delete = extend_schema(
    tags=["v1"],
    auth=VISITOR_TOKEN,
    parameters=[WWW_AUTHENTICATE],
    responses={204: None, **errors(401, 403, 404, 409, 503)},
)
messages_post = extend_schema(
    tags=["v1"],
    request=s.MessageCreateSerializer,
    description=STREAM_DESCRIPTION,
    auth=VISITOR_TOKEN,
    parameters=[RETRY_AFTER, WWW_AUTHENTICATE],
    responses={
        201: s.TurnSerializer,
        (200, "text/event-stream"): OpenApiResponse(
            response=STREAM_EVENT,
            description="The reply as it is written (with `stream: true`); the schema is "
            "one event's.",
            examples=[OpenApiExample("A streamed reply", value=STREAM_EXAMPLE)],
        ),
        **errors(400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504),
    },
)
feedback_post = extend_schema(
    tags=["v1"],
    request=s.FeedbackCreateSerializer,
    auth=VISITOR_TOKEN,
    parameters=[WWW_AUTHENTICATE],
    responses={
        200: s.MessageSerializer,
        **errors(400, 401, 403, 404, 409, 413, 415, 503),
        404: OpenApiResponse(
            s.ErrorSerializer,
            description="No such session or message; or the message is the visitor's "
            "(`not_a_reply`): only the assistant's replies take feedback.",
        ),
    },
)

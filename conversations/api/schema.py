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

ERRORS = {code: s.ErrorSerializer for code in (400, 403, 404, 409, 413, 415, 502, 503, 504)}

STREAM_DESCRIPTION = """\
With `"stream": true` the reply comes as Server-Sent Events, one JSON object per `data:` line:

- `message`: the visitor's message as stored (a Message, with its `seq`);
- `delta`: `{"text": "next piece"}`, as the model writes (many);
- then exactly one of `done` (the reply as stored: a Message with `status`, `usage`,
  `finish_reason`) or `error` (`{"code", "message", "retryable"}`; the partial reply is stored
  with status `error`).

A `: ping` comment line comes every 15 seconds while the model is silent. Whatever is known
before the stream starts (validation, 403, 404, 409, 413) is an HTTP status instead. A client
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
    responses={200: s.SeedSessionSerializer},
    summary="Create a session (original ChatKit format)",
)
seed_chat = extend_schema(
    tags=["seed"],
    request=s.SeedChatSerializer,
    responses={200: s.SeedChatResponseSerializer},
    summary="Send a message and get the reply (original ChatKit format)",
)
assistant_config = extend_schema(
    tags=["v1"], responses={200: s.AssistantConfigSerializer, 404: s.ErrorSerializer}
)
sessions_post = extend_schema(
    tags=["v1"], request=s.SessionCreateSerializer, responses={201: s.SessionSerializer, **ERRORS}
)
session_get = extend_schema(
    tags=["v1"],
    parameters=[
        OpenApiParameter("before", int, description="Page back: only messages with a lower seq.")
    ],
    responses={200: s.SessionSerializer, **ERRORS},
)
session_delete = extend_schema(tags=["v1"], responses={204: None, **ERRORS})
messages_post = extend_schema(
    tags=["v1"],
    request=s.MessageCreateSerializer,
    description=STREAM_DESCRIPTION,
    responses={
        201: s.TurnSerializer,
        (200, "text/event-stream"): OpenApiResponse(
            response=OpenApiTypes.STR,
            description="The reply as it is written (with `stream: true`).",
            examples=[OpenApiExample("A streamed reply", value=STREAM_EXAMPLE)],
        ),
        **ERRORS,
    },
)
feedback_post = extend_schema(
    tags=["v1"], request=s.FeedbackCreateSerializer, responses={200: s.MessageSerializer, **ERRORS}
)

"""The HTTP API: thin views that parse, call one service or selector, and render.

Chat entry points are async (adrf) views on the one async turn pipeline; the short endpoints
are plain DRF views. Public endpoints have no authentication classes: the session id is the
visitor's bearer secret, so a logged-in staff member is treated like any visitor.
"""

import time

from adrf.views import APIView as AsyncAPIView
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from chatkit import STARTED_AT
from conversations import metrics, policy, selectors, services
from conversations.api import serializers as s
from conversations.api.streams import TurnStreamResponse
from conversations.db import db_step
from conversations.models import Session

ERRORS = {code: s.ErrorSerializer for code in (400, 403, 404, 409, 411, 413, 415, 502, 503, 504)}


def _now_iso() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def _session_for(request, public_id: str) -> Session:
    return selectors.session_for_visitor(public_id=public_id, origin=policy.request_origin(request))


def _session_body(session: Session, *, before: int | None = None, new: bool = False) -> dict:
    messages, has_more = (
        ([], False) if new else selectors.session_messages_page(session=session, before=before)
    )
    return s.SessionSerializer(
        {
            "id": session.public_id,
            "assistant": session.assistant.slug,
            "created_at": session.created_at,
            "messages": messages,
            "has_more": has_more,
        }
    ).data


def _session_start(request, *, assistant_slug: str | None, metadata: dict) -> Session:
    return services.session_start(
        assistant_slug=assistant_slug,
        origin=policy.request_origin(request),
        user_agent=request.headers.get("User-Agent", ""),
        ip=policy.client_ip(request),
        metadata=metadata,
    )


# --- Health ------------------------------------------------------------------------------


class HealthView(APIView):
    @extend_schema(
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
    def get(self, request):
        """Liveness: the process answers."""
        return Response(
            {
                "status": "OK",
                "timestamp": _now_iso(),
                "uptime": round(time.monotonic() - STARTED_AT, 3),
            }
        )


class ReadyView(APIView):
    @extend_schema(
        tags=["health"],
        responses={
            200: inline_serializer(
                "Ready",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            ),
            503: inline_serializer(
                "NotReady",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            ),
        },
    )
    def get(self, request):
        """Readiness: the database and the cache answer."""
        checks = {"database": _check_database(), "cache": _check_cache()}
        ready = all(result == "ok" for result in checks.values())
        return Response(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def _check_database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # a probe reports any failure rather than raising it
        return f"error: {exc.__class__.__name__}"


def _check_cache() -> str:
    try:
        cache.set("chatkit:ready", "1", timeout=5)
        return "ok" if cache.get("chatkit:ready") == "1" else "error: value lost"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


@require_GET
def metrics_view(request):
    """Prometheus metrics, for a scraper holding METRICS_TOKEN; absent without one."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound("Not Found\n", content_type="text/plain")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(offered.strip(), token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


# --- The seed's wire format ----------------------------------------------------------------


class SeedCreateSessionView(APIView):
    @extend_schema(
        tags=["seed"],
        request=None,
        responses={200: s.SeedSessionSerializer},
        summary="Create a session (original ChatKit format)",
    )
    def post(self, request):
        session = _session_start(request, assistant_slug=None, metadata={})
        return Response({"sessionId": session.public_id, "message": "Session created successfully"})


class SeedChatView(AsyncAPIView):
    @extend_schema(
        tags=["seed"],
        request=s.SeedChatSerializer,
        responses={200: s.SeedChatResponseSerializer},
        summary="Send a message and get the reply (original ChatKit format)",
    )
    async def post(self, request):
        data = _validated(s.SeedChatSerializer, request.data)
        session = await db_step(_session_for)(request, data["sessionId"])
        _, reply = await services.message_post(session=session, content=data["message"])
        return Response(
            {
                "sessionId": session.public_id,
                "response": reply.content,
                "timestamp": _now_iso(),
            }
        )


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Version 1 -------------------------------------------------------------------------------


class AssistantConfigView(APIView):
    @extend_schema(
        tags=["v1"], responses={200: s.AssistantConfigSerializer, 404: s.ErrorSerializer}
    )
    def get(self, request, slug: str):
        """The public configuration the widget draws itself with."""
        config = selectors.assistant_widget_config(slug=slug)
        return Response(s.AssistantConfigSerializer(config).data)


class SessionListView(APIView):
    @extend_schema(
        tags=["v1"],
        request=s.SessionCreateSerializer,
        responses={201: s.SessionSerializer, **ERRORS},
    )
    def post(self, request):
        """Start a conversation."""
        data = _validated(s.SessionCreateSerializer, request.data)
        session = _session_start(
            request, assistant_slug=data.get("assistant"), metadata=data["metadata"]
        )
        return Response(_session_body(session, new=True), status=status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(
        tags=["v1"],
        parameters=[
            OpenApiParameter(
                "before", int, description="Page back: only messages with a lower seq."
            )
        ],
        responses={200: s.SessionSerializer, **ERRORS},
    )
    def get(self, request, session_id: str):
        """A conversation with its newest page of messages."""
        session = _session_for(request, session_id)
        before = request.query_params.get("before")
        if before is not None:
            before = serializers.IntegerField(min_value=1).run_validation(before)
        return Response(_session_body(session, before=before))

    @extend_schema(tags=["v1"], responses={204: None, **ERRORS})
    def delete(self, request, session_id: str):
        """Delete a conversation and every message in it."""
        services.session_delete(session=_session_for(request, session_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


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


class MessageListView(AsyncAPIView):
    @extend_schema(
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
    async def post(self, request, session_id: str):
        """Send a visitor message and get the assistant's reply, whole or streamed."""
        data = _validated(s.MessageCreateSerializer, request.data)
        session = await db_step(_session_for)(request, session_id)
        if data["stream"]:
            turn = await services.turn_open(session=session, content=data["content"])
            return TurnStreamResponse(turn)
        user_message, reply = await services.message_post(session=session, content=data["content"])
        return Response(
            s.TurnSerializer({"user_message": user_message, "assistant_message": reply}).data,
            status=status.HTTP_201_CREATED,
        )


class FeedbackView(APIView):
    @extend_schema(
        tags=["v1"],
        request=s.FeedbackCreateSerializer,
        responses={200: s.MessageSerializer, **ERRORS},
    )
    def post(self, request, session_id: str, seq: int):
        """Rate a reply up or down (null clears the rating)."""
        data = _validated(s.FeedbackCreateSerializer, request.data)
        message = services.message_feedback_set(
            session=_session_for(request, session_id),
            seq=seq,
            rating=data["rating"],
            comment=data["comment"],
        )
        return Response(s.MessageSerializer(message).data)

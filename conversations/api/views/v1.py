"""Version 1, what the widget uses: assistants' config, sessions, messages and feedback.

The chat entry point is an async (adrf) view on the one async turn pipeline; the short
endpoints are plain DRF views.
"""

from adrf.views import APIView as AsyncAPIView
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import policy, selectors, services
from conversations.api import schema
from conversations.api import serializers as s
from conversations.api.streams import TurnStreamResponse
from conversations.api.views.common import NO_STORE, session_body, session_for, validated


class AssistantConfigView(APIView):
    @schema.assistant_config
    def get(self, request, slug: str):
        """The public configuration the widget draws itself with."""
        config = selectors.assistant_widget_config(slug=slug)
        return Response(s.AssistantConfigSerializer(config).data)


class SessionListView(AsyncAPIView):
    @schema.sessions_post
    async def post(self, request):
        """Start a conversation."""
        data = validated(s.SessionCreateSerializer, request.data)  # JSON only: 415 else
        session = await services.session_start(
            visitor=policy.Visitor.of(request),
            assistant_slug=data.get("assistant"),
            metadata=data["metadata"],
        )
        return Response(
            session_body(session, new=True), status=status.HTTP_201_CREATED, headers=NO_STORE
        )


class SessionDetailView(APIView):
    @schema.session_get
    def get(self, request, session_id: str):
        """A conversation with its newest page of messages."""
        session = session_for(request, session_id)
        page = validated(s.SessionPageSerializer, request.query_params)
        return Response(session_body(session, before=page.get("before")), headers=NO_STORE)

    @schema.session_delete
    def delete(self, request, session_id: str):
        """Delete a conversation and every message in it."""
        services.session_delete(session=session_for(request, session_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListView(AsyncAPIView):
    @schema.messages_post
    async def post(self, request, session_id: str):
        """Send a visitor message and get the assistant's reply, whole or streamed."""
        data = validated(s.MessageCreateSerializer, request.data)
        visitor = policy.Visitor.of(request)
        if data["stream"]:
            turn = await services.turn_start(
                visitor=visitor, public_id=session_id, content=data["content"]
            )
            return TurnStreamResponse(turn)
        user_message, reply = await services.message_post(
            visitor=visitor, public_id=session_id, content=data["content"]
        )
        return Response(
            s.TurnSerializer({"user_message": user_message, "assistant_message": reply}).data,
            status=status.HTTP_201_CREATED,
            headers=NO_STORE,
        )


class FeedbackView(APIView):
    @schema.feedback_post
    def post(self, request, session_id: str, seq: int):
        """Rate a reply up or down (null clears the rating)."""
        data = validated(s.FeedbackCreateSerializer, request.data)
        message = services.message_feedback_set(
            session=session_for(request, session_id),
            seq=seq,
            rating=data["rating"],
            comment=data["comment"],
        )
        return Response(s.MessageSerializer(message).data, headers=NO_STORE)

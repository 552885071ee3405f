"""Version 1, what the widget uses: assistants' config, sessions, messages and feedback.

Every view is async (adrf), on the event loop: the chat entry point on the one async turn
pipeline, the short endpoints with their database work in one step (conversations.db).
"""

from rest_framework import status
from rest_framework.response import Response

from conversations import policy, selectors, services
from conversations.api import schema
from conversations.api import serializers as s
from conversations.api.streams import TurnStreamResponse
from conversations.api.views.common import (
    NO_STORE,
    AsyncAPIView,
    session_body,
    session_read,
    validated,
)
from conversations.db import db_step
from conversations.exceptions import TokenRequired
from conversations.representations import message_data


class AssistantConfigView(AsyncAPIView):
    @schema.assistant_config
    async def get(self, request, slug: str):
        """The public configuration the widget draws itself with."""
        config = await db_step(selectors.assistant_widget_config)(slug=slug)
        return Response(s.AssistantConfigSerializer(config).data)


class SessionListView(AsyncAPIView):
    @schema.sessions_list
    async def get(self, request):
        """A signed-in visitor's conversations with an assistant, newest activity first."""
        query = validated(s.SessionListQuerySerializer, request.query_params)
        body = await db_step(_visitor_sessions)(policy.Visitor.of(request), query)
        return Response(body, headers=NO_STORE)

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


class SessionDetailView(AsyncAPIView):
    @schema.session_get
    async def get(self, request, session_id: str):
        """A conversation with its newest page of messages."""
        visitor = policy.Visitor.of(request)
        body = await db_step(session_read)(visitor, session_id, request.query_params)
        return Response(body, headers=NO_STORE)

    @schema.session_delete
    async def delete(self, request, session_id: str):
        """Delete a conversation and every message in it."""
        await db_step(_session_delete)(policy.Visitor.of(request), session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _visitor_sessions(visitor: policy.Visitor, query: dict) -> dict:
    assistant = selectors.assistant_get(slug=query["assistant"])
    policy.session_origin_check(visitor, assistant)
    owner = policy.visitor_identity(visitor, assistant)
    if owner is None:  # anonymous, or the assistant's identity mode is off
        raise TokenRequired("Only a signed-in visitor has a list of conversations.")
    sessions, cursor = selectors.visitor_sessions_page(
        assistant=assistant, visitor_sub=owner.sub, cursor=query.get("cursor")
    )
    listed = [
        {
            "id": session.public_id,
            "assistant": assistant.slug,
            "title": session.title,
            "created_at": session.created_at,
            "last_activity_at": session.last_activity_at,
        }
        for session in sessions
    ]
    return s.VisitorSessionListSerializer({"sessions": listed, "next": cursor}).data


def _session_delete(visitor: policy.Visitor, public_id: str) -> None:
    services.session_delete(session=policy.session_reachable(visitor, public_id))


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
            # As TurnSerializer (the schema's) shows it.
            {"user_message": message_data(user_message), "assistant_message": message_data(reply)},
            status=status.HTTP_201_CREATED,
            headers=NO_STORE,
        )


class FeedbackView(AsyncAPIView):
    @schema.feedback_post
    async def post(self, request, session_id: str, seq: int):
        """Rate a reply up or down (null clears the rating)."""
        data = validated(s.FeedbackCreateSerializer, request.data)
        message = await db_step(_feedback_set)(policy.Visitor.of(request), session_id, seq, data)
        return Response(s.MessageSerializer(message).data, headers=NO_STORE)


def _feedback_set(visitor: policy.Visitor, public_id: str, seq: int, data: dict):
    return services.message_feedback_set(
        session=policy.session_reachable(visitor, public_id),
        seq=seq,
        rating=data["rating"],
        comment=data["comment"],
    )

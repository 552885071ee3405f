"""The original ChatKit backend's wire format, kept exactly."""

from rest_framework.response import Response

from conversations import policy, services
from conversations.api import schema
from conversations.api import serializers as s
from conversations.api.views.common import NO_STORE, AsyncAPIView, now_iso, validated


class SeedCreateSessionView(AsyncAPIView):
    @schema.seed_create_session
    async def post(self, request):
        visitor = policy.Visitor.of(request)
        session = await services.session_start(visitor=visitor, assistant_slug=None)
        return Response(
            {"sessionId": session.public_id, "message": "Session created successfully"},
            headers=NO_STORE,  # the session id is the visitor's secret
        )


class SeedChatView(AsyncAPIView):
    @schema.seed_chat
    async def post(self, request):
        data = validated(s.SeedChatSerializer, request.data)
        _, reply = await services.message_post(
            visitor=policy.Visitor.of(request), public_id=data["sessionId"], content=data["message"]
        )
        return Response(
            {"sessionId": data["sessionId"], "response": reply.content, "timestamp": now_iso()},
            headers=NO_STORE,
        )

"""The original ChatKit backend's wire format, kept exactly."""

from adrf.views import APIView as AsyncAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import services
from conversations.api import schema
from conversations.api import serializers as s
from conversations.api.views.common import NO_STORE, now_iso, session_for, session_start, validated
from conversations.db import db_step


class SeedCreateSessionView(APIView):
    @schema.seed_create_session
    def post(self, request):
        session = session_start(request, assistant_slug=None, metadata={})
        return Response({"sessionId": session.public_id, "message": "Session created successfully"})


class SeedChatView(AsyncAPIView):
    @schema.seed_chat
    async def post(self, request):
        data = validated(s.SeedChatSerializer, request.data)
        session = await db_step(session_for)(request, data["sessionId"])
        _, reply = await services.message_post(session=session, content=data["message"])
        return Response(
            {"sessionId": session.public_id, "response": reply.content, "timestamp": now_iso()},
            headers=NO_STORE,
        )

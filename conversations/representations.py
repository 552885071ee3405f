"""How a message is shown outside the database: by the API, its stream, and staff exports.

`{"seq", "role", "content", "status", "created_at", "model", "usage", "ttft_ms",
"duration_ms", "finish_reason", "feedback"}`; reply-only fields are null on visitor messages.
"""

from rest_framework import serializers

from conversations.models import Message


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField(allow_null=True)
    completion_tokens = serializers.IntegerField(allow_null=True)


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Message.Rating.choices)
    comment = serializers.CharField(allow_blank=True)


class MessageSerializer(serializers.Serializer):
    """A message as the API, the stream and exports show it; reply-only fields are null."""

    # The fields describe it (the API's schema); `message_data` writes it.

    seq = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Message.Role.choices)
    content = serializers.CharField()
    status = serializers.ChoiceField(choices=Message.Status.choices)
    created_at = serializers.DateTimeField()
    model = serializers.CharField(allow_null=True, read_only=True)
    usage = UsageSerializer(allow_null=True, read_only=True)
    ttft_ms = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    finish_reason = serializers.CharField(allow_null=True, read_only=True)
    feedback = FeedbackSerializer(allow_null=True, read_only=True)

    def to_representation(self, message: Message) -> dict:
        # Without the copy of every field DRF makes for each serializer it builds.
        return message_data(message)


_CREATED_AT = serializers.DateTimeField()


def message_data(message: Message) -> dict:
    """A message as `MessageSerializer` shows it."""
    return {
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "created_at": _CREATED_AT.to_representation(message.created_at),
        "model": message.model or None,
        "usage": (
            None
            if message.prompt_tokens is None and message.completion_tokens is None
            else {
                "prompt_tokens": message.prompt_tokens,
                "completion_tokens": message.completion_tokens,
            }
        ),
        "ttft_ms": message.ttft_ms,
        "duration_ms": message.duration_ms,
        "finish_reason": message.finish_reason or None,
        "feedback": (
            {"rating": message.feedback_rating, "comment": message.feedback_comment}
            if message.feedback_rating
            else None
        ),
    }

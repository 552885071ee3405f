"""How a message is shown outside the database: by the API, its stream, and staff exports.

`{"seq", "role", "content", "status", "created_at", "model", "usage", "ttft_ms",
"duration_ms", "finish_reason", "feedback"}`; reply-only fields are null on visitor messages.
"""

from drf_spectacular.utils import extend_schema_field
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

    seq = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Message.Role.choices)
    content = serializers.CharField()
    status = serializers.ChoiceField(choices=Message.Status.choices)
    created_at = serializers.DateTimeField()
    model = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    ttft_ms = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    finish_reason = serializers.SerializerMethodField()
    feedback = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_model(self, message: Message) -> str | None:
        return message.model or None

    @extend_schema_field(UsageSerializer(allow_null=True))
    def get_usage(self, message: Message) -> dict | None:
        if message.prompt_tokens is None and message.completion_tokens is None:
            return None
        return {
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_finish_reason(self, message: Message) -> str | None:
        return message.finish_reason or None

    @extend_schema_field(FeedbackSerializer(allow_null=True))
    def get_feedback(self, message: Message) -> dict | None:
        if not message.feedback_rating:
            return None
        return {"rating": message.feedback_rating, "comment": message.feedback_comment}

"""What the API reads and writes; also what the OpenAPI schema describes."""

import json
import re

from django.conf import settings
from django.core.validators import (
    MaxLengthValidator,
    ProhibitNullCharactersValidator,
    RegexValidator,
    validate_slug,
)
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import empty

from conversations.models import Message
from conversations.representations import MessageSerializer

METADATA_MAX_BYTES = 2048
# The largest seq a message can have (a PositiveIntegerField: PostgreSQL's integer).
SEQ_MAX = 2**31 - 1
# A query string's number as people write it: no sign, space, leading zero or other digits
# than ASCII's (int() would take " 3", "+3", "03" and "٣" alike).
PLAIN_NUMBER = re.compile(r"[1-9][0-9]*")
# The characters str.strip() trims (str.isspace()), written for a JSON Schema (ECMA-262) and
# a Python regex alike: the schema and the server must agree on what "blank" is.
SPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Something besides spaces, and no NUL anywhere: what a trimmed, non-blank field takes.
TEXT_PATTERN = rf"^[^\u0000]*[^\u0000{SPACE}][^\u0000]*\Z"
# No NUL; "" too where the field may be blank, which the schema adds as an alternative.
NO_NUL_PATTERN = r"^[^\u0000]+\Z"


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of turning them into text.

    Its refusal of NUL characters (DRF's own, as PostgreSQL cannot store them) is a pattern
    that also says what trimming and blank mean, so that the schema tells the whole rule.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Validators see a value already trimmed and found not blank: this pattern can only
        # fail on a NUL, but it is written out in full for the schema.
        some_text = self.trim_whitespace and not self.allow_blank
        pattern = RegexValidator(
            TEXT_PATTERN if some_text else NO_NUL_PATTERN,
            "Null characters are not allowed.",
            "null_characters_not_allowed",
        )
        self.validators = [
            pattern if isinstance(v, ProhibitNullCharactersValidator) else v
            for v in self.validators
        ]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class MessageContentField(StrictCharField):
    """A visitor's message: trimmed, then 1 to CHATKIT_MAX_MESSAGE_CHARS characters."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            "Trimmed, then 1 to `max_message_chars` characters (the assistant's config).",
        )
        # The limit is read per request, so that it follows the setting (tests override it).
        too_long = MaxLengthValidator(
            lambda: settings.CHATKIT_MAX_MESSAGE_CHARS,
            "Ensure this field has no more than %(limit_value)d characters.",
        )
        super().__init__(
            trim_whitespace=True, allow_blank=False, min_length=1, validators=[too_long], **kwargs
        )


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: "yes", 1 and "true" are refused rather than guessed at."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class QueryParameter:
    """A field of a query string read as sent, given once: a QueryDict answers with the last
    of repeated values, and DRF would read `?name=` as no parameter at all."""

    default_error_messages = {"repeated": "Give this parameter once."}

    def get_value(self, query: QueryDict):
        values = query.getlist(self.field_name)
        if not values:
            return empty
        return values if len(values) > 1 else values[0]

    def to_internal_value(self, data):
        if isinstance(data, list):
            self.fail("repeated")
        return super().to_internal_value(data)


class PageCursorField(QueryParameter, serializers.IntegerField):
    """A seq in a query string, strictly: plain digits from 1 to SEQ_MAX, given once."""

    default_error_messages = {
        "invalid": "Enter a whole number from 1 in plain digits (no sign, space or leading zero).",
    }

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=SEQ_MAX, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list):
            self.fail("repeated")
        if not isinstance(data, str) or not PLAIN_NUMBER.fullmatch(data):
            self.fail("invalid")
        if len(data) > len(str(SEQ_MAX)):  # before int(), which refuses thousands of digits
            self.fail("max_value", max_value=SEQ_MAX)
        return int(data)


# --- Output ------------------------------------------------------------------------------


class SessionSerializer(serializers.Serializer):
    id = serializers.CharField()
    assistant = serializers.SlugField()
    created_at = serializers.DateTimeField()
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()


class VisitorSessionSerializer(serializers.Serializer):
    """One of a signed-in visitor's conversations, as their list shows it."""

    id = serializers.CharField()
    assistant = serializers.SlugField()
    title = serializers.CharField(allow_blank=True, help_text="Its first message, cut short.")
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()


class VisitorSessionListSerializer(serializers.Serializer):
    sessions = VisitorSessionSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="The next page's `cursor`; null on the last page."
    )


class TurnSerializer(serializers.Serializer):
    user_message = MessageSerializer()
    assistant_message = MessageSerializer()


class AssistantConfigSerializer(serializers.Serializer):
    """What the widget needs to draw itself; nothing secret (no prompt, no model)."""

    slug = serializers.SlugField()
    name = serializers.CharField()
    greeting = serializers.CharField()
    starter_prompts = serializers.ListField(child=serializers.CharField())
    accent_color = serializers.CharField()
    max_message_chars = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=["live", "demo"])
    notice = serializers.CharField(
        allow_blank=True,
        help_text="The line under the message box; empty: the widget says, in the visitor's "
        "language, that this is an AI assistant and how long conversations are kept.",
    )
    privacy_url = serializers.CharField(allow_blank=True, help_text="Privacy policy, or empty.")
    unavailable_message = serializers.CharField(
        allow_blank=True,
        help_text="Shown when the day's token budget is spent (429 budget_exhausted); empty: "
        "a generic line in the visitor's language.",
    )
    retention_days = serializers.IntegerField(
        help_text="Days a conversation is kept after its last message (purge_sessions)."
    )
    identity = serializers.ChoiceField(
        choices=["off", "optional", "required"],
        help_text="Signed-in visitors: `off` (every visitor anonymous, a token is ignored), "
        "`optional` (anonymous or with a token), `required` (a token on every call).",
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="What went wrong, for programs: `rate_limited`, ….")
    message = serializers.CharField(help_text="What went wrong, for people.")
    retryable = serializers.BooleanField(
        required=False, help_text="Upstream (model) failures: whether trying again may work."
    )
    fields = serializers.DictField(
        required=False, help_text="400: the messages for each field or query parameter at fault."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- Input -------------------------------------------------------------------------------


class SessionPageSerializer(serializers.Serializer):
    """The query of GET /api/v1/sessions/{id}: which page of messages."""

    before = PageCursorField(
        required=False, help_text="Page back: only messages with a lower seq (at most once)."
    )


class QueryTextField(QueryParameter, StrictCharField):
    """Text in a query string, strictly: given once, and `?name=` is blank (refused), not
    absent as DRF would read it."""


class SessionListQuerySerializer(serializers.Serializer):
    """The query of GET /api/v1/sessions: whose assistant, which page."""

    assistant = QueryTextField(
        required=False,
        default="default",
        validators=[validate_slug],
        help_text="The assistant's slug (at most once).",
    )
    cursor = QueryTextField(
        required=False,
        max_length=200,
        help_text="The `next` of the previous page, as given (at most once).",
    )


class SessionCreateSerializer(serializers.Serializer):
    assistant = StrictCharField(required=False, validators=[validate_slug])
    metadata = serializers.DictField(
        required=False,
        default=dict,
        help_text=f"Anything about the page the chat starts on, up to {METADATA_MAX_BYTES} "
        "bytes as JSON. A NUL character in it is stored as U+FFFD.",
    )

    def validate_metadata(self, value: dict) -> dict:
        if len(json.dumps(value)) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(
                f"Ensure metadata is no larger than {METADATA_MAX_BYTES} bytes as JSON."
            )
        return _without_nul(value)


def _without_nul(value):
    """`value` with each NUL character, which PostgreSQL's jsonb cannot store, as U+FFFD.

    Metadata is the embedding page's context, not what the visitor wrote: a stray NUL in a
    page title is no reason to refuse a conversation (and JSON Schema could not say so).
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


class MessageCreateSerializer(serializers.Serializer):
    content = MessageContentField()
    stream = StrictBooleanField(
        default=False,
        help_text="true: answer with a text/event-stream (message, delta…, done or error).",
    )


class FeedbackCreateSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=Message.Rating.choices, allow_null=True)
    comment = StrictCharField(required=False, allow_blank=True, max_length=1000, default="")


# --- The seed's wire format ----------------------------------------------------------------


class SeedChatSerializer(serializers.Serializer):
    sessionId = StrictCharField()  # noqa: N815 (the seed's field name)
    message = MessageContentField()


class SeedSessionSerializer(serializers.Serializer):
    sessionId = serializers.CharField()  # noqa: N815
    message = serializers.CharField()


class SeedChatResponseSerializer(serializers.Serializer):
    sessionId = serializers.CharField()  # noqa: N815
    response = serializers.CharField()
    timestamp = serializers.DateTimeField()


class SeedErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong, for people.")

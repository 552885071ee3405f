"""Assistants, sessions (one conversation each) and their messages."""

from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.db.models import Q

# new_session_id stays importable from here: migration 0001 names it so.
from conversations.fields import EncryptedCharField, EncryptedJSONField, EncryptedTextField
from conversations.ids import SESSION_ID_MAX_LENGTH, new_session_id
from conversations.validators import validate_origins, validate_starter_prompts


class Assistant(models.Model):
    """A configured assistant: what it is told, which model answers, how the widget looks."""

    slug = models.SlugField(max_length=50, unique=True, help_text="Used in the embed snippet.")
    name = models.CharField(max_length=100, help_text="Shown in the widget's header.")
    system_prompt = models.TextField(help_text="Sent to the model before every conversation.")
    model = models.CharField(
        max_length=100, blank=True, help_text="Model name; blank uses OPENAI_MODEL."
    )
    temperature = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    max_output_tokens = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(1)],
        help_text="Upper bound on the length of one reply, in tokens.",
    )
    context_messages = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1)],
        help_text="How many of the latest messages are sent to the model with each turn.",
    )
    greeting = models.TextField(blank=True, help_text="First message the widget shows.")
    starter_prompts = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_starter_prompts],
        help_text="Suggested first questions (a list of strings).",
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_origins],
        help_text="Sites that may use this assistant (e.g. https://example.com); "
        "empty allows every origin in CORS_ALLOWED_ORIGINS.",
    )
    accent_color = models.CharField(
        max_length=7,
        default="#2563eb",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #2563eb.")],
    )
    notice = models.CharField(
        max_length=300,
        blank=True,
        help_text="The line under the widget's message box. Empty: that the visitor is talking "
        "to an AI assistant and how long conversations are kept, in the visitor's language.",
    )
    privacy_url = models.URLField(
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Your privacy policy (https://…), linked from the notice; optional.",
    )
    unavailable_message = models.CharField(
        max_length=300,
        blank=True,
        help_text="What the widget shows when the day's token budget is spent (e.g. how else "
        "to reach you); empty: a generic line in the visitor's language.",
    )
    is_active = models.BooleanField(default=True)
    daily_token_budget = models.PositiveIntegerField(
        default=0,
        help_text="Tokens (prompt and completion) this assistant may spend per UTC day; "
        "0 is unlimited. A reply starts only if what is left covers its maximum length.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Signed-in visitors (conversations.identity): the host site's server signs a token with
    # this secret, vouching for who its logged-in user is. Whoever holds the secret can mint
    # tokens for anyone: it is shown once, when generated, and never again.
    class IdentityMode(models.TextChoices):
        OFF = "off", "off: every visitor is anonymous"
        OPTIONAL = "optional", "optional: anonymous visitors and signed-in ones"
        REQUIRED = "required", "required: signed-in visitors only"

    identity_mode = models.CharField(
        max_length=8,
        choices=IdentityMode.choices,
        default=IdentityMode.OFF,
        help_text="Whether the host site vouches for its logged-in visitors with a signed "
        "token (see the README's identity section).",
    )
    # Whoever holds it can sign in as anyone: sealed at rest like the conversations' text.
    identity_secret = EncryptedCharField(max_length=255, blank=True, editable=False)
    # Still accepted until CHATKIT_IDENTITY_ROTATION_GRACE_HOURS after the rotation, so that
    # the host's servers can switch to the new secret without refusing visitors meanwhile.
    identity_secret_previous = EncryptedCharField(max_length=255, blank=True, editable=False)
    identity_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2),
                name="assistant_temperature_range",
            ),
            models.CheckConstraint(
                condition=Q(max_output_tokens__gte=1), name="assistant_max_output_tokens_positive"
            ),
            models.CheckConstraint(
                condition=Q(context_messages__gte=1), name="assistant_context_messages_positive"
            ),
            # The widget links to it: no javascript:, data: or relative URLs.
            models.CheckConstraint(
                condition=Q(privacy_url="") | Q(privacy_url__regex=r"^https?://"),
                name="assistant_privacy_url_http",
            ),
            models.CheckConstraint(
                condition=Q(identity_mode__in=["off", "optional", "required"]),
                name="assistant_identity_mode_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Session(models.Model):
    """One conversation between a visitor and an assistant."""

    public_id = models.CharField(
        max_length=SESSION_ID_MAX_LENGTH, unique=True, default=new_session_id, editable=False
    )
    assistant = models.ForeignKey(Assistant, on_delete=models.PROTECT, related_name="sessions")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_activity_at = models.DateTimeField(auto_now_add=True, db_index=True)
    origin = models.CharField(max_length=255, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    ip_hash = models.CharField(
        max_length=64, blank=True, help_text="Keyed hash of the client IP; the IP is not stored."
    )
    metadata = EncryptedJSONField(default=dict, blank=True)
    title = EncryptedCharField(max_length=100, blank=True)
    # The `seq` the conversation's next message takes: a turn takes two at once with the
    # UPDATE that locks the row (services.turns), rather than reading MAX(seq).
    next_seq = models.PositiveIntegerField(default=1, editable=False)
    # The signed-in visitor it belongs to (the token's `sub`), blank for an anonymous one;
    # name and email as the latest token of that visitor gave them.
    visitor_sub = models.CharField(max_length=255, blank=True, default="")
    visitor_name = EncryptedCharField(max_length=255, blank=True, default="")
    visitor_email = EncryptedCharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "conversation"
        indexes = [
            # A signed-in visitor's conversations with an assistant, newest activity first
            # (GET /api/v1/sessions); and the erasure of one person's conversations.
            models.Index(
                fields=["visitor_sub", "assistant", "-last_activity_at", "-id"],
                name="session_visitor_activity",
                condition=~Q(visitor_sub=""),
            ),
        ]

    def __str__(self) -> str:
        # Never the public id (the visitor's secret), nor the title (the visitor's words):
        # Django keeps this in its admin log, which outlives the conversation.
        return f"Conversation {self.pk}"


class Message(models.Model):
    """A visitor message or an assistant reply, numbered within its session."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        COMPLETE = "complete"
        STREAMING = "streaming"
        INTERRUPTED = "interrupted"
        ERROR = "error"

    class Rating(models.TextChoices):
        UP = "up"
        DOWN = "down"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=10, choices=Role.choices)
    content = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    # Reply-only fields.
    model = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    feedback_rating = models.CharField(max_length=4, choices=Rating.choices, blank=True)
    feedback_comment = EncryptedTextField(blank=True)
    # While a reply is `streaming`: the process writing it (conversations.heartbeat), and the
    # tokens it reserved of its assistant's daily budget, settled when it ends.
    owner = models.CharField(max_length=100, blank=True)
    reserved_tokens = models.PositiveIntegerField(null=True, blank=True)
    reserved_prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    reserved_on = models.DateField(null=True, blank=True)  # the UTC day it counts in

    class Meta:
        ordering = ["session_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="message_unique_seq"),
            # At most one reply in flight per session, whichever process writes it.
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(status="streaming"),
                name="message_one_streaming_reply",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["user", "assistant"]), name="message_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["complete", "streaming", "interrupted", "error"]),
                name="message_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(feedback_rating="")
                | (Q(role="assistant") & Q(feedback_rating__in=["up", "down"])),
                name="message_feedback_on_replies",
            ),
            models.CheckConstraint(
                condition=Q(role="assistant") | Q(status="complete"),
                name="message_user_messages_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq} {self.role}"


class DailySpend(models.Model):
    """Tokens an assistant spent (or holds reserved for replies being written) on a UTC day."""

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="spends")
    day = models.DateField()
    tokens = models.PositiveBigIntegerField(default=0)
    # The highest share of the budget (80, 100) already reported for the day: once each.
    alerted_percent = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assistant", "day"], name="daily_spend_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.assistant_id} {self.day}: {self.tokens}"


class ProcessHeartbeat(models.Model):
    """A serving process's sign of life: a reply it owns is in flight only while it beats."""

    process = models.CharField(max_length=100, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.process


class EncryptionCanary(models.Model):
    """One known value sealed with the encryption key: `serve` opens it before starting, so a
    wrong key refuses to start instead of serving text it cannot read (services.encryption)."""

    # One row: starts racing to write it write the same row, and one of them wins.
    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    value = EncryptedTextField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="encryption_canary_one_row")]

    def __str__(self) -> str:
        return "Encryption canary"

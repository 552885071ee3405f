"""Assistants, and what the widget may know of one."""

from django.conf import settings

from conversations import llm
from conversations.exceptions import AssistantNotFound
from conversations.models import Assistant

DEFAULT_ASSISTANT = "default"


def assistant_get(*, slug: str | None = None) -> Assistant:
    """An active assistant by slug (the `default` one when no slug is given)."""
    try:
        return Assistant.objects.get(slug=slug or DEFAULT_ASSISTANT, is_active=True)
    except Assistant.DoesNotExist:
        raise AssistantNotFound() from None


def assistant_widget_config(*, slug: str) -> dict:
    """What the widget may know of an assistant: nothing secret (no prompt, no model)."""
    assistant = assistant_get(slug=slug)
    # Stored values are validated, but one written past the validators must not break pages.
    prompts = assistant.starter_prompts if isinstance(assistant.starter_prompts, list) else []
    return {
        "slug": assistant.slug,
        "name": assistant.name,
        "greeting": assistant.greeting,
        "starter_prompts": [p for p in prompts if isinstance(p, str) and p.strip()],
        "accent_color": assistant.accent_color,
        "max_message_chars": settings.CHATKIT_MAX_MESSAGE_CHARS,
        "mode": llm.mode(),
        "notice": assistant.notice,
        "privacy_url": assistant.privacy_url,
        "unavailable_message": assistant.unavailable_message,
        "retention_days": settings.CHATKIT_RETENTION_DAYS,
        "identity": assistant.identity_mode,
    }


def identity_in_use() -> bool:
    """Does any assistant sign visitors in? (The admin shows the visitor's column only then.)"""
    return Assistant.objects.exclude(identity_mode=Assistant.IdentityMode.OFF).exists()

"""Assistants' identity secrets: generated here, never typed in, rotated with a grace period."""

from django.db import transaction
from django.utils import timezone

from conversations import identity
from conversations.models import Assistant


def identity_secret_rotate(*, assistant: Assistant) -> str:
    """Give the assistant a new identity secret and return it (to be shown once). The one it
    replaces stays valid for CHATKIT_IDENTITY_ROTATION_GRACE_HOURS, while the host's servers
    switch over; the one before that, no longer."""
    secret = identity.secret_new()
    with transaction.atomic():
        # Locked: two rotations at once must not both keep the same previous secret.
        current = Assistant.objects.select_for_update().get(pk=assistant.pk)
        assistant.identity_secret_previous = current.identity_secret
        assistant.identity_secret = secret
        assistant.identity_rotated_at = timezone.now()
        assistant.save(
            update_fields=[
                "identity_secret",
                "identity_secret_previous",
                "identity_rotated_at",
                "updated_at",
            ]
        )
    return secret

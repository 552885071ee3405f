"""The audit log: one row per staff or operator action, never changed once written."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """What a staff member or an operator did, when, and from where.

    Nothing here points at another table: a record outlives the user who acted and the
    conversation it names (a purge or an erasure removes the conversation, not its record).
    """

    class Action(models.TextChoices):
        TRANSCRIPT_VIEW = "transcript_view", "viewed a transcript"
        EXPORT = "export", "exported conversations"
        DELETE = "delete", "deleted conversations"
        SEARCH = "search", "searched conversations"
        ASSISTANT_ADD = "assistant_add", "added an assistant"
        ASSISTANT_CHANGE = "assistant_change", "changed an assistant"
        ASSISTANT_DELETE = "assistant_delete", "deleted an assistant"
        PURGE = "purge", "purged idle conversations"
        ERASURE = "erasure", "erased conversations"
        LOGIN = "login", "signed in"
        LOGIN_FAILED = "login_failed", "failed to sign in"
        AUDIT_EXPORT = "audit_export", "exported the audit log"
        AUDIT_PRUNE = "audit_prune", "pruned the audit log"

    class ActorType(models.TextChoices):
        STAFF = "staff", "staff (admin)"
        CLI = "cli", "operator (command line)"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    # The user's id and name as they were: text and a plain number, not a foreign key, so
    # the record stays when the account goes. Empty for a failed sign-in by no known user.
    actor_id = models.PositiveIntegerField(null=True, blank=True)
    actor = models.CharField(
        max_length=150, blank=True, help_text="The username, or the OS user of a command."
    )
    action = models.CharField(max_length=30, choices=Action.choices, db_index=True)
    # The conversation's database id, never its public id (the visitor's credential).
    conversation = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    ip_hash = models.CharField(
        max_length=64, blank=True, help_text="Keyed hash of the client IP; the IP is not stored."
    )
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "audit event"
        # Only "view" exists to grant: adding, changing and deleting are nobody's.
        default_permissions = ["view"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(actor_type__in=["staff", "cli"]),
                name="auditevent_actor_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Audit event {self.pk}"

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Sign-ins are recorded from the signals Django sends for them: its login view is
        # the admin's, and these are the hook it gives.
        from audit import signals

        signals.connect()

"""Sign-ins to the admin, recorded from the signals Django's login sends."""

from django.contrib.auth.signals import user_logged_in, user_login_failed

from audit.models import AuditEvent
from audit.services import audit_record


def _logged_in(sender, request, user, **kwargs) -> None:
    if request is not None:
        audit_record(action=AuditEvent.Action.LOGIN, request=request, user=user)


def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django has already replaced the password in `credentials` with stars; only the name
    # typed is kept, to show which account was being tried.
    if request is not None:
        audit_record(
            action=AuditEvent.Action.LOGIN_FAILED,
            request=request,
            actor=str(credentials.get("username", "")),
        )


def connect() -> None:
    user_logged_in.connect(_logged_in, dispatch_uid="audit.login")
    user_login_failed.connect(_login_failed, dispatch_uid="audit.login_failed")

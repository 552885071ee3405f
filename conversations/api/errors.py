"""Every error under /api/ and /health as JSON, in the documented shapes.

v1: `{"error": {"code", "message"}}`; the seed routes keep their own `{"error": "text"}`.
DRF's shapes (`detail`, field lists) are translated here, and Django's own 400/403/404/500
handlers answer JSON for API paths too.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status

from chatkit import routes
from conversations.api.parsers import PayloadTooLarge
from conversations.exceptions import ChatKitError

logger = logging.getLogger(__name__)


def is_api_path(request: HttpRequest) -> bool:
    return routes.is_json_path(request.path_info)


def error_response(
    request: HttpRequest | None,
    *,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra,
) -> JsonResponse:
    """The error body for this request's route: the seed's shape or v1's."""
    # path_info: the route, without the prefix the app may be mounted under.
    path = request.path_info if request is not None else ""
    body = error_body(path, code=code, message=message, **extra)
    return JsonResponse(body, status=status, headers=headers)


def error_body(path: str, *, code: str, message: str, **extra) -> dict:
    """The error's JSON for a route (without the prefix): the seed's shape or v1's."""
    if path in routes.SEED_PATHS:
        return {"error": message}
    return {"error": {"code": code, "message": message, **extra}}


def _first_message(detail) -> str:
    """One readable sentence out of DRF's nested error details."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        message = _first_message(value)
        return message if field in ("non_field_errors", "detail") else f"{field}: {message}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> JsonResponse | None:
    """DRF's exception handler: the domain's errors, DRF's and the database's, as JSON."""
    request = context.get("request")
    if isinstance(exc, ChatKitError):
        extra = {"retryable": exc.retryable} if hasattr(exc, "retryable") else {}
        retry_after = getattr(exc, "retry_after", None)
        headers = dict(getattr(exc, "headers", {}))  # WWW-Authenticate on a 401
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return error_response(
            request,
            status=exc.status,
            code=exc.code,
            message=exc.message,
            headers=headers or None,
            **extra,
        )
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, (OperationalError, InterfaceError)):
        # Includes the pool's timeout: every connection busy is "try again", not a crash.
        logger.warning("database unavailable: %r", exc)
        return error_response(
            request,
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            code="database_unavailable",
            message="The service is busy; try again in a moment.",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        extra = {}
        if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
            extra["fields"] = exc.detail
        code = exc.get_codes()
        if not isinstance(code, str):
            code = "invalid"
        return error_response(
            request,
            status=exc.status_code,
            code=code,
            message=_first_message(exc.detail),
            headers=headers,
            **extra,
        )
    return None  # anything else is a bug: Django logs it and handler500 answers


# --- Django's handlers, for what never reaches a DRF view ----------------------------------


@csrf_exempt  # a JSON 404 for any method, never a CSRF page
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Unknown URLs under /api/ and /health, whatever the method."""
    return error_response(
        request, status=404, code="not_found", message="There is no such endpoint."
    )


@csrf_exempt
async def no_such_endpoint(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """The route of unknown URLs under /api/ and /health: `not_found`, on the event loop."""
    return not_found(request)


def bad_request(request: HttpRequest, exception=None):
    if is_api_path(request):
        return error_response(request, status=400, code="bad_request", message="Bad request.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception=None):
    if is_api_path(request):
        return error_response(request, status=403, code="forbidden", message="Forbidden.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception=None):
    if is_api_path(request):
        return not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    if is_api_path(request):
        return error_response(
            request,
            status=500,
            code="server_error",
            message="Something went wrong on our side; it has been logged.",
        )
    return defaults.server_error(request)

"""Who may talk to an assistant, and from where: origins and the client's address."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from conversations.exceptions import OriginNotAllowed
from conversations.models import Assistant


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For through trusted proxies only.

    Each trusted proxy appends the address it saw, so with N of them the client is the N-th
    entry from the right; anything further left is what the client itself claimed.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.CHATKIT_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote
    candidate = forwarded[-proxies]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return remote
    return candidate


def request_origin(request: HttpRequest) -> str:
    """The `Origin` header, normalised; empty for servers and curl, which send none."""
    return request.headers.get("Origin", "").strip().rstrip("/").lower()


def origin_check(*, assistant: Assistant, origin: str) -> None:
    """Refuse an origin outside the assistant's own allowed origins, when it has any.

    CORS_ALLOWED_ORIGINS bounds which sites' pages may read the API's answers at all; this
    narrows it per assistant, and server-side, since CORS only stops a browser from reading
    an answer, not the request from being made.
    """
    allowed = {
        o.strip().rstrip("/").lower() for o in assistant.allowed_origins or [] if isinstance(o, str)
    }
    if origin and allowed and origin not in allowed:
        raise OriginNotAllowed()

"""The admin's sign-in, with its attempts limited per client IP and per username.

Guessing a password takes many tries: each IP and each username gets a few per period
(CHATKIT_RATELIMIT_LOGIN_PER_IP, CHATKIT_RATELIMIT_LOGIN_PER_USERNAME). A name under attack
is refused only for that name: other staff sign in as usual. Counts are django-ratelimit's
(atomic increments in the shared cache), keyed by keyed hashes, never the IP or the name.
A cache that does not answer lets attempts through (logged), as every other limit does.
"""

import functools
import logging
import math
import unicodedata

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.crypto import salted_hmac
from django_ratelimit.core import get_usage

from conversations import metrics, policy

logger = logging.getLogger(__name__)


def _ip_key(group: str, request: HttpRequest) -> str:
    return policy.ip_hash(policy.client_ip(request)) or "unknown"


def _username_key(group: str, request: HttpRequest) -> str:
    # Normalised as Django's UsernameField does before authenticating (NFKC), and case-folded:
    # "admin" typed in full-width letters and "Admin" are guesses at the same account.
    name = unicodedata.normalize("NFKC", request.POST.get("username", "")).strip().casefold()
    return salted_hmac("chatkit.admin-login", name, algorithm="sha256").hexdigest()


_LIMITS = (
    ("chatkit.admin-login.ip", _ip_key, "CHATKIT_RATELIMIT_LOGIN_PER_IP"),
    ("chatkit.admin-login.username", _username_key, "CHATKIT_RATELIMIT_LOGIN_PER_USERNAME"),
)


def _seconds_refused(request: HttpRequest) -> int:
    """Count this attempt against each limit; how long it must wait (0: go ahead)."""
    wait = 0
    for group, key, setting in _LIMITS:
        try:
            usage = get_usage(
                request, group=group, key=key, rate=getattr(settings, setting), increment=True
            )
        except Exception as exc:  # the cache is away: fail open, as every limit does
            logger.warning("admin sign-in limits are not counting: %r", exc)
            return 0
        if usage and usage["should_limit"]:
            wait = max(wait, math.ceil(usage["time_left"]))
    return wait


def login_limited(view):
    @functools.wraps(view)
    def login(request: HttpRequest, *args, **kwargs):
        if request.method == "POST":
            wait = _seconds_refused(request)
            if wait:
                metrics.REFUSED.labels("admin_login_limited").inc()
                response = TemplateResponse(
                    request,
                    "admin/login_refused.html",
                    {**admin.site.each_context(request), "minutes": max(1, wait // 60)},
                    status=429,
                )
                response["Retry-After"] = str(max(1, wait))
                return response
        return view(request, *args, **kwargs)

    return login

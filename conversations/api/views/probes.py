"""Liveness, readiness and metrics: for load balancers, orchestrators and Prometheus."""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotFound
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import status
from rest_framework.response import Response

from chatkit import STARTED_AT, draining
from conversations import encryption, metrics, selectors
from conversations.api import schema
from conversations.api.views.common import AsyncAPIView, now_iso
from conversations.db import db_step

logger = logging.getLogger(__name__)


class HealthView(AsyncAPIView):
    @schema.health
    async def get(self, request):
        """Liveness: the process answers."""
        uptime = round(time.monotonic() - STARTED_AT, 3)
        return Response({"status": "OK", "timestamp": now_iso(), "uptime": uptime})


class ReadyView(AsyncAPIView):
    @schema.ready
    async def get(self, request):
        """Readiness: the database answers. A cache that does not is reported as `degraded`
        and still ready: rate limits fail open, so one Redis outage must not take every
        instance out of the load balancer."""
        # Side by side, each in a thread: Django's cache backends have no async client (their
        # `aget` is a thread hop too), and a cache timing out must not hold a database thread.
        database, cache_ = await asyncio.gather(
            db_step(_check_database)(),
            sync_to_async(_check_cache, thread_sensitive=False)(),
        )
        database, encrypted = database
        checks = {"database": database, "cache": cache_}
        if encrypted is not None:  # keys set, or text encrypted: whether they fit
            checks["encryption"] = encrypted
        ready = database == "ok" and encrypted in (None, "ok")
        if draining.draining():  # stopping (SIGTERM): the load balancer sends no more
            checks["server"] = "draining"
            ready = False
        return Response(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def _check_database() -> tuple[str, str | None]:
    """The database's answer, and whether the encryption keys open its canary (None: there
    is nothing to check, encryption being off and the canary not sealed). One statement."""
    try:
        stored = selectors.encryption_canary_stored()
    except Exception as exc:  # a probe reports any failure rather than raising it
        return f"error: {exc.__class__.__name__}", None
    if selectors.encryption_canary_problem(stored) is not None:
        # The reason (which key) is for the operator's log at start, not for every prober.
        return "ok", "error: the encryption keys do not open the database's text"
    return "ok", ("ok" if encryption.keyring().on else None)


def _check_cache() -> str:
    try:
        cache.set("chatkit:ready", "1", timeout=5)
        answered = cache.get("chatkit:ready") == "1"
    except Exception as exc:
        logger.warning("readiness: the cache does not answer: %r", exc)
        return "degraded"
    return "ok" if answered else "degraded"


@require_GET
def metrics_view(request):
    """Prometheus metrics, for a scraper holding METRICS_TOKEN; absent without one."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound("Not Found\n", content_type="text/plain")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(offered.strip(), token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

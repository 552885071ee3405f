"""Project middleware."""

from collections.abc import AsyncIterator
from typing import BinaryIO

from asgiref.sync import markcoroutinefunction, sync_to_async
from csp.constants import HEADER as CSP
from csp.utils import build_policy
from django.conf import settings
from django.http.request import split_domain_port
from whitenoise.middleware import WhiteNoiseMiddleware

from chatkit import routes


async def _read_chunks(file: BinaryIO | None, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    if file is None:  # HEAD and 304 answers have no body
        return
    read = sync_to_async(file.read, thread_sensitive=False)
    while chunk := await read(size):
        yield chunk


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise as an async middleware.

    WhiteNoise's own middleware is sync-only, which makes Django pass every request, a long
    chat turn included, through a worker thread. Here the lookup is a dictionary hit (a
    file-system search only with autorefresh, in development) and files are read off the
    event loop.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response, *args, **kwargs):
        super().__init__(get_response, *args, **kwargs)
        markcoroutinefunction(self)  # so the middleware around us calls us as async

    async def __call__(self, request):
        if self.autorefresh:
            find = sync_to_async(self.find_file, thread_sensitive=False)
            static_file = await find(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        response = self.serve(static_file, request)
        response.streaming_content = _read_chunks(response.file_to_stream)
        return response


class ContentSecurityPolicyMiddleware:
    """django-csp's policy (`CONTENT_SECURITY_POLICY`) on every HTML page, as an async middleware.

    django-csp's own CSPMiddleware is sync-only: under ASGI every request, a chat turn too,
    would pass through a thread for it. A policy only means something to a document, so the
    API's JSON goes through untouched. The header is built once; a view decorated with
    django-csp's `csp`, `csp_update`, `csp_replace` or `csp_exempt` gets its own. Of
    django-csp's settings only `DIRECTIVES` is read: no nonces (nothing we serve is inline),
    no report-only policy, no `EXCLUDE_URL_PREFIXES`.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = build_policy()
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        if (
            CSP in response
            or not response.get("Content-Type", "").startswith("text/html")
            or getattr(response, "_csp_exempt", False)
            # Django's debug pages style themselves inline; django-csp leaves them alone too.
            or (settings.DEBUG and response.status_code in (404, 500))
        ):
            return response
        policy = self._policy_of_view(response)
        if policy is None:
            policy = self.policy
        if policy:
            response[CSP] = policy
        return response

    @staticmethod
    def _policy_of_view(response) -> str | None:
        # Where django-csp's view decorators leave their parts (its middleware reads them so).
        parts = {
            "config": getattr(response, "_csp_config", None),
            "update": getattr(response, "_csp_update", None),
            "replace": getattr(response, "_csp_replace", None),
        }
        if all(part is None for part in parts.values()):
            return None
        return build_policy(**parts)


PROBES = frozenset({"/" + routes.HEALTH, "/" + routes.HEALTH_READY})


class ProbeHostMiddleware:
    """Health probes answer whatever their `Host`: a load balancer or an orchestrator
    probes the pod's or instance's own address, which ALLOWED_HOSTS does not list.

    For exactly the probe routes, the request's host is not checked against ALLOWED_HOSTS
    (only its syntax is). They build no URL and redirect nowhere, so no host can be abused
    there; every other route is validated as before. First in MIDDLEWARE, so that
    SecurityMiddleware and CommonMiddleware, which ask for the host, find it done.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        if request.path_info in PROBES:
            validated = request.get_host
            request.get_host = lambda: _any_host(request) or validated()
        return await self.get_response(request)


def _any_host(request) -> str | None:
    """The request's host when it is a well-formed host name or address, else None."""
    host = request._get_raw_host()
    domain, _ = split_domain_port(host)
    return host if domain else None

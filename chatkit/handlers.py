"""The API's own request handler: a middleware chain without thread hops, on the event loop.

Under ASGI, Django runs every sync-only middleware hook, the request signals' receivers, a
sync view and the rendering of a DRF response through `sync_to_async`: 17 thread hops for a
`GET /health`, 13 of them for middleware (sessions, CSRF, auth, messages) whose work an API
request never uses. API routes (`routes.runs_api_chain`) are served here instead, through a
chain derived from `MIDDLEWARE`, which stays as it is for the admin, the demo page and the
API docs (and for `check --deploy`):

- dropped: `SKIPPED`, the cookie and sign-in middleware. The API authenticates nobody (no
  authentication classes: no session, no CSRF), reads no `request.user` and sets no messages;
  for an API request they would add nothing to the response.
- run inline: `INLINE`, Django's MiddlewareMixin middleware that do no I/O (the security
  headers and HTTPS redirect, ALLOWED_HOSTS, APPEND_SLASH and Content-Length, X-Frame-Options):
  their `process_request` and `process_response` are called on the event loop instead of in a
  thread, so API responses keep exactly the headers and redirects they had.
- any other middleware is loaded as Django loads it: an async-capable one (ours, CORS) as
  is, and a sync-only one an operator adds, with its thread hops, rather than dropped.

Django's request signals run their receivers the same way: Django's own (which only tidy the
current thread's database connections and caches: the event loop holds none) inline, any
other through a thread. A DRF response, its data already serialized, is rendered inline.
"""

import asyncio
import contextlib

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, reset_queries
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix
from django.utils.module_loading import import_string
from rest_framework.response import Response

SKIPPED = frozenset(
    {
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }
)
INLINE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
# Django's receivers of request_started and request_finished: they close or reset what the
# current thread (or context) has open or set. The event loop's thread opens no database
# connection (the API's database work runs in conversations.db's threads, which release their
# own); the rest is memory.
INLINE_RECEIVERS = frozenset({reset_queries, close_old_connections, close_caches, reset_urlconf})


def api_middleware() -> list[type]:
    """The API's middleware classes, outermost first, from `MIDDLEWARE`."""
    chain = []
    for path in settings.MIDDLEWARE:
        if path in SKIPPED:
            continue
        middleware = import_string(path)
        chain.append(_inline(middleware) if path in INLINE else middleware)
    return chain


def _inline(middleware: type) -> type:
    """A MiddlewareMixin middleware whose hooks run on the event loop, not in a thread."""

    async def acall(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response

    for hook in ("process_view", "process_template_response", "process_exception"):
        if hasattr(middleware, hook):  # Django would call these in a thread: not inline
            raise ImproperlyConfigured(f"{middleware.__name__} has {hook}: it cannot run inline")
    return type(
        middleware.__name__,
        (middleware,),
        {"sync_capable": False, "async_capable": True, "__acall__": acall},
    )


async def send_signal(signal, sender, **named) -> None:
    """`signal.asend`, with Django's own request receivers called inline."""
    # Django's asend runs every sync receiver in a thread; `_live_receivers` is how it finds them.
    sync_receivers, async_receivers = signal._live_receivers(sender)
    others = []
    for receiver in sync_receivers:
        if receiver in INLINE_RECEIVERS:
            receiver(signal=signal, sender=sender, **named)
        else:
            others.append(receiver)
    if others:

        def send_others() -> None:
            for receiver in others:
                receiver(signal=signal, sender=sender, **named)

        await sync_to_async(send_others)()
    if async_receivers:
        await asyncio.gather(*(r(signal=signal, sender=sender, **named) for r in async_receivers))


async def close_response(response: HttpResponseBase) -> None:
    """`response.close()`, inline unless the response brings a close of its own: an async one
    (`aclose`, a stream's: api/streams.py) is awaited first, a sync one runs in a thread."""
    aclose = getattr(response, "aclose", None)
    if aclose is not None:
        await aclose()
    elif type(response).close is not HttpResponseBase.close:
        await sync_to_async(response.close)()  # it may do anything: as Django calls it
        return
    # HttpResponseBase.close, but its signal: closing the request's body and uploads is
    # closing memory (bodies over their cap never reach Django: chatkit.bodies).
    for closer in response._resource_closers:
        # As Django does: a closer's failure must not stop the others.
        with contextlib.suppress(Exception):
            closer()
    response._resource_closers.clear()
    response.closed = True
    await send_signal(signals.request_finished, sender=response._handler_class)


class APIHandler(ASGIHandler):
    """Django's ASGI handler for API routes: `api_middleware()`, no thread hop of its own.

    Called through `handle` by chatkit.asgi, without the thread per request that Django's
    `__call__` starts. The methods below are Django 5.2's (`load_middleware`, `handle`,
    `_get_response_async`), changed only where they would hop to a thread.
    """

    def load_middleware(self, is_async=True):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        handler_is_async = True
        for middleware in reversed(api_middleware()):
            middleware_is_async = getattr(middleware, "async_capable", False)
            if not middleware_is_async and not getattr(middleware, "sync_capable", True):
                raise RuntimeError(f"Middleware {middleware} is neither sync nor async capable.")
            adapted = self.adapt_method_mode(middleware_is_async, handler, handler_is_async)
            try:
                instance = middleware(adapted)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {middleware} returned None.")
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, self.adapt_method_mode(True, instance.process_view))
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(True, instance.process_template_response)
                )
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(
                    self.adapt_method_mode(False, instance.process_exception)
                )
            handler = convert_exception_to_response(instance)
            handler_is_async = middleware_is_async
        self._middleware_chain = self.adapt_method_mode(True, handler, handler_is_async)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await send_signal(signals.request_started, sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await close_response(error_response)
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left meanwhile
                await self.send_response(response, send)
            return response

        # As Django: the disconnect listener first, so that it cannot keep the request's
        # task from being cancelled.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # views may handle their cancellation
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await send_signal(signals.request_finished, sender=self.__class__)
        else:
            await close_response(response)
        body_file.close()

    async def _get_response_async(self, request):
        response = None
        callback, callback_args, callback_kwargs = self.resolve_request(request)
        for middleware_method in self._view_middleware:
            response = await middleware_method(request, callback, callback_args, callback_kwargs)
            if response:
                break
        if response is None:
            view = self.make_view_atomic(callback)
            if not iscoroutinefunction(view):  # the schema, a view an operator adds
                view = sync_to_async(view, thread_sensitive=True)
            try:
                response = await view(request, *callback_args, **callback_kwargs)
            except Exception as exc:
                response = await sync_to_async(self.process_exception_by_middleware)(exc, request)
                if response is None:
                    raise
        self.check_response(response, callback)
        if hasattr(response, "render") and callable(response.render):
            for middleware_method in self._template_response_middleware:
                response = await middleware_method(request, response)
                self.check_response(response, middleware_method)
            try:
                if isinstance(response, Response):
                    # Its data is serialized already: rendering it is JSON encoding.
                    response = response.render()
                elif iscoroutinefunction(response.render):
                    response = await response.render()
                else:  # a template may query the database
                    response = await sync_to_async(response.render)()
            except Exception as exc:
                response = await sync_to_async(self.process_exception_by_middleware)(exc, request)
                if response is None:
                    raise
        if asyncio.iscoroutine(response):
            raise RuntimeError("Response is still a coroutine.")
        return response

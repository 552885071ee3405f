"""Canaries: one test per private API the project relies on.

Each names the upgrade to check when it fails: Django, asgiref, WhiteNoise, django-csp or uvicorn
changed something our code reaches into, and the code that relies on it (named in the message)
must be looked at before the upgrade lands. They test what we rely on, not that the rest of
our code works: that is the other tests' job.
"""

import hashlib
import inspect
import signal
from importlib.metadata import version

import pytest
import uvicorn
from adrf.views import APIView as AdrfAPIView
from asgiref.sync import AsyncToSync, async_to_sync
from csp.decorators import csp, csp_exempt, csp_replace, csp_update
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.test import RequestFactory
from django.utils.deprecation import MiddlewareMixin
from uvicorn.supervisors import multiprocess
from whitenoise.middleware import WhiteNoiseMiddleware

from conversations.models import Message, Session


def changed(package: str, what: str, relied_on_by: str) -> str:
    return (
        f"{package} {version(package)} changed {what}, which {relied_on_by} relies on: "
        "check that code (and this canary) before taking the upgrade."
    )


def test_django_asgi_handler_handles_a_request_in_handle_under_a_thread_context():
    # chatkit/asgi.py calls `handle` itself for chat routes, to leave out the per-request
    # thread that `__call__` sets up (ThreadSensitiveContext) for them.
    call = inspect.getsource(ASGIHandler.__call__)
    handle = inspect.signature(ASGIHandler.handle)
    assert inspect.iscoroutinefunction(ASGIHandler.handle), changed(
        "django", "ASGIHandler.handle (no longer a coroutine)", "chatkit.asgi.ChatKitASGIHandler"
    )
    assert list(handle.parameters) == ["self", "scope", "receive", "send"], changed(
        "django", "ASGIHandler.handle's parameters", "chatkit.asgi.ChatKitASGIHandler"
    )
    assert "ThreadSensitiveContext" in call and "self.handle(" in call, changed(
        "django",
        "what ASGIHandler.__call__ does around handle()",
        "chatkit.asgi.ChatKitASGIHandler (a chat request without a thread of its own)",
    )


def test_django_cancels_the_response_of_a_visitor_who_left_and_does_not_close_it():
    # A visitor leaving cancels the response task: TurnStreamResponse's iterator is cancelled
    # (the turn stores `interrupted`). A response cancelled before it was sent is not closed
    # by Django: chatkit.asgi closes such a stream's turn itself.
    handle = inspect.getsource(ASGIHandler.handle)
    relied_on_by = "conversations.api.streams.TurnStreamResponse and chatkit.asgi"
    assert "listen_for_disconnect" in handle and "task.cancel()" in handle, changed(
        "django", "how ASGIHandler.handle reacts to http.disconnect", relied_on_by
    )
    cancelled_branch = handle.split("except asyncio.CancelledError:")[-1]
    assert "response.close" in cancelled_branch.split("else:")[1], changed(
        "django", "when ASGIHandler.handle closes a response", relied_on_by
    )
    assert "response.close" not in cancelled_branch.split("else:")[0], changed(
        "django", "when ASGIHandler.handle closes a response", relied_on_by
    )


# Code of Django's and adrf's that chatkit.handlers.APIHandler and AsyncAPIView (in
# conversations/api/views/common.py) copy, changed only where it would hop to a thread: as it
# read when it was copied (Django 5.2.19, adrf 0.1.14). A change upstream may have to be copied.
COPIED = {
    ASGIHandler.handle: ("django", "98faeb5bef800331"),
    BaseHandler._get_response_async: ("django", "064b55bfd55fc38d"),
    BaseHandler.load_middleware: ("django", "a1fb7ee5f8586195"),
    HttpResponseBase.close: ("django", "84589f5b23acbb23"),
    MiddlewareMixin.__acall__: ("django", "adf8cbcaf9f11e45"),
    AdrfAPIView.async_dispatch: ("adrf", "5926f734eb685633"),
}


@pytest.mark.parametrize("method", COPIED, ids=lambda method: method.__qualname__)
def test_the_code_the_api_handler_copies_is_unchanged(method):
    package, fingerprint = COPIED[method]
    source = inspect.getsource(method)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == fingerprint, changed(
        package,
        method.__qualname__,
        "chatkit.handlers (or conversations.api.views.common.AsyncAPIView), a copy of it",
    )


def test_django_signals_tell_their_sync_receivers_from_their_async_ones():
    # chatkit.handlers.send_signal runs Django's own request receivers inline, others as
    # Signal.asend would.
    sync_receivers, async_receivers = signals.request_finished._live_receivers(None)
    assert isinstance(sync_receivers, list) and isinstance(async_receivers, list), changed(
        "django", "Signal._live_receivers", "chatkit.handlers.send_signal"
    )
    assert sync_receivers, changed("django", "Signal._live_receivers", "chatkit.handlers")


def test_asgiref_marks_the_thread_that_async_to_sync_waits_in():
    # conversations.db tells async code run by sync code (the test client, a command) from a
    # request's by AsyncToSync.executors.current.
    relied_on_by = "conversations.db.db_step"
    assert hasattr(AsyncToSync, "executors"), changed(
        "asgiref", "AsyncToSync.executors", relied_on_by
    )
    assert getattr(AsyncToSync.executors, "current", None) is None, changed(
        "asgiref", "AsyncToSync.executors.current outside async_to_sync", relied_on_by
    )

    async def inside() -> bool:
        return getattr(AsyncToSync.executors, "current", None) is not None

    assert async_to_sync(inside)(), changed(
        "asgiref", "AsyncToSync.executors.current inside async_to_sync", relied_on_by
    )


def test_whitenoise_middleware_finds_and_serves_a_file_we_can_stream_ourselves():
    # chatkit.middleware.StaticFilesMiddleware looks files up in `files` (or `find_file` with
    # autorefresh), serves them with `serve`, and streams `file_to_stream` off the event loop.
    relied_on_by = "chatkit.middleware.StaticFilesMiddleware"
    middleware = WhiteNoiseMiddleware(get_response=lambda request: None)
    for name in ("autorefresh", "files", "find_file", "serve"):
        assert hasattr(middleware, name), changed("whitenoise", f"WhiteNoise.{name}", relied_on_by)
    static_file = middleware.files.get("/static/widget/chatkit.js") or middleware.find_file(
        "/static/widget/chatkit.js"
    )
    assert static_file is not None, changed("whitenoise", "how files are found", relied_on_by)
    response = middleware.serve(static_file, RequestFactory().get("/static/widget/chatkit.js"))
    assert hasattr(response, "file_to_stream"), changed(
        "whitenoise", "the response of serve() (file_to_stream)", relied_on_by
    )
    response.file_to_stream.close()


@pytest.mark.django_db
def test_django_deletes_rows_without_loading_them_with_raw_delete(session):
    # The purge deletes a batch's messages and conversations with QuerySet._raw_delete, which
    # neither loads the rows nor cascades in Python, and returns how many rows went.
    relied_on_by = "conversations.services.retention.session_purge_batch"
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    messages = Message.objects.filter(session=session)
    assert hasattr(messages, "_raw_delete"), changed("django", "QuerySet._raw_delete", relied_on_by)
    assert messages._raw_delete(messages.db) == 1, changed(
        "django", "what QuerySet._raw_delete returns", relied_on_by
    )
    sessions = Session.objects.filter(pk=session.pk)
    assert sessions._raw_delete(sessions.db) == 1 and not Session.objects.exists(), changed(
        "django", "QuerySet._raw_delete", relied_on_by
    )


def test_django_csp_view_decorators_leave_their_parts_on_the_response():
    # chatkit.middleware.ContentSecurityPolicyMiddleware reads what django-csp's decorators
    # put on a view's response, as django-csp's own (sync) middleware does.
    relied_on_by = "chatkit.middleware.ContentSecurityPolicyMiddleware"
    decorators = {
        "_csp_config": csp({"img-src": ["'self'"]}),
        "_csp_update": csp_update({"img-src": ["'self'"]}),
        "_csp_replace": csp_replace({"img-src": ["'self'"]}),
        "_csp_exempt": csp_exempt(),
    }
    for attribute, decorator in decorators.items():
        response = decorator(lambda request: HttpResponse())(None)
        assert getattr(response, attribute, None), changed(
            "django-csp", f"where its view decorators leave their parts ({attribute})", relied_on_by
        )


async def _no_app(scope, receive, send) -> None:
    pass  # pragma: no cover (never called)


def test_uvicorn_loads_the_app_once_its_server_handles_the_exit_signals():
    # chatkit.serving.ServeConfig.load chains draining onto the handler uvicorn's Server has
    # installed for SIGTERM and SIGINT by then, in each serving process.
    seen = {}

    class Recording(uvicorn.Config):
        def load(self) -> None:
            seen.update({sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)})
            super().load()
            server.should_exit = True  # stop as soon as it has started

    server = uvicorn.Server(Recording(_no_app, host="127.0.0.1", port=0, lifespan="off"))
    server.run()

    assert seen == {sig: server.handle_exit for sig in (signal.SIGTERM, signal.SIGINT)}, changed(
        "uvicorn", "when Server loads the app, or how it handles signals", "chatkit.serving"
    )


def test_uvicorn_server_stops_gracefully_on_handle_exit_within_its_timeout():
    # chatkit.serving calls the Server's handler after starting to drain, and bounds its wait
    # for open connections with timeout_graceful_shutdown.
    server = uvicorn.Server(uvicorn.Config(_no_app))
    relied_on_by = "chatkit.serving.drain_on_exit_signals"
    assert list(inspect.signature(server.handle_exit).parameters) == ["sig", "frame"], changed(
        "uvicorn", "Server.handle_exit's parameters", relied_on_by
    )
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit and not server.force_exit, changed(
        "uvicorn", "what Server.handle_exit does on SIGTERM", relied_on_by
    )
    assert "self.config.timeout_graceful_shutdown" in inspect.getsource(server.shutdown), changed(
        "uvicorn", "Server.shutdown's use of timeout_graceful_shutdown", "chatkit.serving.serve"
    )


def test_uvicorn_multiprocess_passes_sigterm_to_each_worker_server_and_stops_on_a_failed_one():
    # `serve --workers N`: the parent's SIGTERM reaches each worker's own Server (built from
    # our ServeConfig), which drains; a worker whose app failed to load (STARTUP_FAILURE)
    # stops the parent instead of being restarted forever.
    relied_on_by = "chatkit.serving.serve"
    source = inspect.getsource
    assert "self.should_exit.set()" in source(multiprocess.Multiprocess.handle_term), changed(
        "uvicorn", "Multiprocess.handle_term", relied_on_by
    )
    assert "self.terminate_all()" in source(multiprocess.Multiprocess.run), changed(
        "uvicorn", "Multiprocess.run", relied_on_by
    )
    assert "signal.SIGTERM" in source(multiprocess.Process.terminate), changed(
        "uvicorn", "how Process.terminate stops a worker", relied_on_by
    )
    assert "Server(config=self.config)" in source(multiprocess.Process), changed(
        "uvicorn", "the Server a worker runs", relied_on_by
    )
    keep_alive = source(multiprocess.Multiprocess.keep_subprocess_alive)
    assert "STARTUP_FAILURE" in keep_alive and "self.should_exit.set()" in keep_alive, changed(
        "uvicorn", "what Multiprocess does with a worker that failed to start", relied_on_by
    )

"""ASGI entry point: `uvicorn chatkit.asgi:application`."""

import functools
import multiprocessing
import os

import django
from django.core.handlers.asgi import ASGIHandler

from chatkit import routes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatkit.settings")


class ChatKitASGIHandler(ASGIHandler):
    """Django's ASGI handler, without a thread per API request.

    Django gives every ASGI request a thread of its own for its sync work (middleware,
    signal receivers, `sync_to_async` calls), alive until the response ends. A chat turn
    lasts as long as the model writes, so 2,000 open streams would keep 2,000 idle threads.
    API requests are handed to the API's handler (chatkit.handlers), whose middleware and
    signals run on the event loop, and whose views do their database steps on a small pool
    of threads (conversations.db). The admin, the demo page and the API docs go through
    Django's handler and all of `MIDDLEWARE`.

    It also closes the turn of a stream whose response was never sent: a visitor who leaves
    between the view's return and the first byte cancels the request before Django would
    close the response.
    """

    def __init__(self):
        super().__init__()
        from chatkit.handlers import APIHandler  # it needs the apps loaded: below

        self.api = APIHandler()

    async def __call__(self, scope, receive, send):
        route = _route(routes.app_path(scope)) if scope["type"] == "http" else None
        if route is None:
            await super().__call__(scope, receive, send)
        elif route == "api":
            await self.api.handle(scope, receive, send)
        else:
            streams = []
            token = opened_streams.set(streams)
            try:
                await self.api.handle(scope, receive, send)
            finally:
                opened_streams.reset(token)
                for stream in streams:
                    await stream.close_unsent()


@functools.lru_cache(maxsize=4096)
def _route(path: str) -> str | None:
    # Decided once per path: a conversation's messages route comes back with every turn.
    if routes.CHAT_PATH.match(path) is not None:
        return "chat"
    return "api" if routes.runs_api_chain(path) else None


django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

# `uvicorn --workers N` starts each worker as a child process, whether or not WEB_CONCURRENCY
# says so (settings check that one): without a shared cache each would count its own limits.
if (
    not settings.DEBUG
    and settings.CHATKIT_RATELIMIT_ENABLED
    and not settings.REDIS_URL
    and multiprocessing.parent_process() is not None
):
    raise ImproperlyConfigured(
        "Refusing to start a worker process without REDIS_URL: with several workers every "
        "rate limit would count per worker (see .env.example)."
    )

from chatkit.bodies import BodyLimit  # noqa: E402 (these need the settings loaded)
from conversations import heartbeat, metrics  # noqa: E402
from conversations.api.streams import opened_streams  # noqa: E402

# Bodies over their route's cap are refused before Django would spool them to disk.
application = BodyLimit(ChatKitASGIHandler())

metrics.forget_dead_processes()  # of workers that ran before this one, in a shared directory
# Beats while this process writes replies, retries their failed final writes, and ends the
# replies of processes that are gone.
heartbeat.start()

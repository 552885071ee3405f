"""ASGI entry point: `uvicorn chatkit.asgi:application`."""

import os
import re

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatkit.settings")

# Requests that wait on the model: the seed chat route and v1 messages (JSON or a stream).
CHAT_PATHS = re.compile(r"^/api/(chat|v1/sessions/[^/]+/messages)$")


class ChatKitASGIHandler(ASGIHandler):
    """Django's ASGI handler, without a thread per chat request.

    Django gives every ASGI request a thread of its own for its sync work (middleware,
    signal receivers, `sync_to_async` calls), alive until the response ends. A chat turn
    lasts as long as the model writes, so 2,000 open streams would keep 2,000 idle threads.
    Chat requests run their short sync steps on asgiref's one process-wide thread instead;
    none of them blocks for long (each database step hands its connection back), and the
    waiting is done on the event loop.
    """

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and CHAT_PATHS.match(scope["path"]):
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


django.setup(set_prefix=False)
application = ChatKitASGIHandler()

from conversations import metrics  # noqa: E402 (needs the settings loaded)

metrics.forget_dead_processes()  # of workers that ran before this one, in a shared directory

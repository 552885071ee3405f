"""A chat turn as Server-Sent Events: `message`, `delta`…, then one `done` or `error`.

The view opens the turn first (so 404, 409 and the like are still HTTP statuses); the
response then runs it, in the task Django sends it from, with a `: ping` comment whenever the
model has been silent for CHATKIT_STREAM_PING_SECONDS. When the visitor goes away, Django
cancels that task, which stores the reply as `interrupted` and closes the upstream request.
"""

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar

from django.conf import settings
from django.http import StreamingHttpResponse

from conversations import metrics, services
from conversations.exceptions import InternalError
from conversations.representations import message_data

logger = logging.getLogger(__name__)

PING = b": ping\n\n"


def sse(event: str, data: dict) -> bytes:
    """One event in the wire format; JSON keeps the data on one line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def event_bytes(event: services.TurnEvent) -> bytes:
    if event.kind == "delta":
        return sse("delta", {"text": event.text})
    if event.kind == "ping":
        return PING
    if event.kind == "error":
        error = event.error
        return sse(
            "error", {"code": error.code, "message": str(error), "retryable": error.retryable}
        )
    return sse(event.kind, message_data(event.message))  # message, done


INTERNAL_ERROR = sse(
    "error",
    {
        "code": InternalError.code,
        "message": InternalError.message,
        "retryable": InternalError.retryable,
    },
)


# The streams a request has opened, when the ASGI handler keeps track (chatkit.asgi): a
# stream whose response was never sent is closed by the handler once the request is over.
opened_streams: ContextVar[list["TurnStreamResponse"] | None] = ContextVar(
    "opened_streams", default=None
)


class TurnStreamResponse(StreamingHttpResponse):
    """`text/event-stream` for one opened turn."""

    def __init__(self, turn: services.Turn):
        self.turn = turn
        self.started = False
        self._events_iterator = self._events()
        super().__init__(self._events_iterator, content_type="text/event-stream")
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
        registry = opened_streams.get()
        if registry is not None:
            registry.append(self)

    def __aiter__(self) -> AsyncIterator[bytes]:
        # Django closes the iterator it gets from here (aclosing) when the visitor leaves:
        # ours, with no layer between, so the turn ends at once.
        return self._events_iterator

    async def _events(self) -> AsyncIterator[bytes]:
        # The turn runs in the task that sends the response: when the visitor goes away,
        # Django cancels it, and the turn stores its reply as interrupted and closes the
        # upstream request.
        self.started = True
        metrics.OPEN_STREAMS.inc()
        try:
            events = services.turn_events(self.turn, ping=settings.CHATKIT_STREAM_PING_SECONDS)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event_bytes(event)
        except Exception:
            # turn_events stores every model failure itself; this is our own (a database
            # error while storing): the visitor still gets the one final event.
            logger.exception("a streamed turn failed")
            yield INTERNAL_ERROR
        finally:
            metrics.OPEN_STREAMS.dec()

    async def close_unsent(self) -> None:
        """End the turn of a stream whose response was never sent (its reply is `streaming`)."""
        if not self.started:
            self.started = True  # and it never will be
            await services.turn_end(self.turn)

    # The API's handler (chatkit.handlers) awaits this once the response is done, then closes
    # the rest on the event loop.
    aclose = close_unsent

    def close(self) -> None:
        # Django's own handlers call this in a worker thread once the response is done (the
        # test client's): a stream never sent ends here.
        if not self.started:
            self.started = True
            services.turn_end_blocking(self.turn)
        super().close()

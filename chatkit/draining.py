"""Whether this process is shutting down, and by when its replies must end.

`manage.py serve` starts draining when the process is told to stop (SIGTERM, Ctrl+C): turns
already running get the grace period to finish, new ones are refused. It is process-wide
state on purpose: a signal reaches the process, not a request. Nothing here knows uvicorn or
Django; chatkit.serving sets it, the turn pipeline reads it.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

# No lock: `begin` runs in a signal handler, which may interrupt the main thread anywhere, even
# while it holds one. Single dict operations are atomic in CPython, which is all this needs.
_deadline: float | None = None  # time.monotonic(), which is also the event loop's clock
# Callbacks told the deadline once draining starts, each on its own event loop.
_watchers: dict[object, tuple[asyncio.AbstractEventLoop, Callable[[float], None]]] = {}


def begin(grace: float) -> None:
    """Start draining: what runs must end within `grace` seconds. Later calls change nothing.

    Safe from a signal handler: watchers are called on their own loop, which this wakes.
    """
    global _deadline
    if _deadline is not None:
        return
    _deadline = time.monotonic() + grace
    for loop, callback in list(_watchers.values()):
        with contextlib.suppress(RuntimeError):  # that loop is closed: nothing runs there
            loop.call_soon_threadsafe(callback, _deadline)


def deadline() -> float | None:
    """When running turns must have ended (the event loop's clock), or None: not draining."""
    return _deadline


def draining() -> bool:
    return _deadline is not None


@contextlib.contextmanager
def watching(callback: Callable[[float], None]) -> Iterator[None]:
    """Call `callback(deadline)` on this event loop if draining starts meanwhile."""
    key = object()
    _watchers[key] = (asyncio.get_running_loop(), callback)
    try:
        yield
    finally:
        del _watchers[key]


def reset() -> None:
    """Back to serving (tests)."""
    global _deadline
    _deadline = None

"""Asyncio helpers: work that must finish even when the task that started it is cancelled."""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)

# The loop keeps only weak references to tasks: clean-ups are held here until they are done.
_pending: set[asyncio.Task] = set()
# Who waits for the next clean-up to start (tests that cancel at a given moment).
_waiting: list[asyncio.Future] = []


async def see_through(work: Awaitable[Any], what: str) -> None:
    """Await `work` to its end whatever happens to the caller; a failure is logged, not raised.

    For a turn being abandoned: a second cancellation, or a database error in the clean-up,
    must neither leave a reply `streaming` unnoticed nor hide the cancellation.
    """

    async def logged() -> None:
        try:
            await work
        except Exception:
            logger.exception("could not %s", what)

    task = asyncio.ensure_future(logged())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    for waiter in _waiting:
        if not waiter.done():
            waiter.set_result(None)
    _waiting.clear()
    await asyncio.shield(task)


async def cleanup_started() -> None:
    """Return when the next clean-up starts (call it before it can: one already running,
    an earlier test's say, does not count)."""
    started = asyncio.get_running_loop().create_future()
    _waiting.append(started)
    await started


async def cleanups_finished() -> None:
    """Wait until every clean-up started so far has finished (and those they started)."""
    while _pending:
        await asyncio.gather(*_pending)

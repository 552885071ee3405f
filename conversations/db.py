"""Database access from async code: one short sync step at a time."""

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, sync_to_async
from django.conf import settings
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")

# The threads database steps run on: a few for the whole process, whatever the number of
# open streams. A step that waits (a locked row, a busy pool) holds up only its own thread.
_executor = ThreadPoolExecutor(
    max_workers=settings.CHATKIT_DB_THREADS, thread_name_prefix="chatkit-db"
)


def _release_connections() -> None:
    # With CONN_MAX_AGE=0 a connection outside a transaction is only closed when the request
    # ends; a chat turn lasts as long as the model writes, so hand it back (to the pool, on
    # PostgreSQL) now. A connection inside an atomic block (a test case's) is left alone.
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def _called_from_sync_code() -> bool:
    # Async code run by sync code through async_to_sync (Django's test client, a management
    # command) must use that thread's connection: its open transaction is the caller's.
    return getattr(AsyncToSync.executors, "current", None) is not None


def db_step(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Wrap a sync database function for async callers; its connection is released after it.

    A stream awaiting tokens must hold no connection and no thread: 2,000 open streams must
    not need 2,000 of either.
    """

    @functools.wraps(func)
    def run_and_release(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            _release_connections()

    in_caller = sync_to_async(run_and_release, thread_sensitive=True)

    @functools.wraps(func)
    async def step(*args: P.args, **kwargs: P.kwargs) -> R:
        if _called_from_sync_code():
            return await in_caller(*args, **kwargs)
        # Straight onto the pool, in a copy of the caller's context: what asgiref's
        # sync_to_async adds on top (copying context changes back to the caller, a way back
        # to this loop for async_to_sync) no step uses, and it costs as much again as the
        # hop itself.
        run = functools.partial(contextvars.copy_context().run, run_and_release, *args, **kwargs)
        submitted = _executor.submit(run)
        done = asyncio.wrap_future(submitted)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            # As with sync_to_async: a step not started yet never runs, one running ends
            # before the cancellation goes on (so that a clean-up the caller starts next does
            # not run beside it).
            if not submitted.cancel():
                await asyncio.wait({done})
            raise

    return step

"""Database access from async code: one short sync step at a time."""

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def _release_connections() -> None:
    # With CONN_MAX_AGE=0 a connection outside a transaction is only closed when the request
    # ends; a chat turn lasts as long as the model writes, so hand it back (to the pool, on
    # PostgreSQL) now. A connection inside an atomic block (a test case's) is left alone.
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def db_step(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Wrap a sync database function for async callers; its connection is released after it.

    A stream awaiting tokens must hold no connection: 2,000 open streams must not need 2,000
    connections.
    """

    @functools.wraps(func)
    def run_and_release(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            _release_connections()

    return sync_to_async(run_and_release, thread_sensitive=True)

"""What a piece of code costs the database: the SQL it sends, its transactions, and its
connection check-outs, in whichever thread it runs (database steps run in a thread pool).

    with database_work() as work:
        ...                                   # a chat turn, say
    work.statements, work.budget, work.transactions, work.checkouts

Shared by the regression guard (tests/conversations/test_statements.py) and
bench/statements.py. The heartbeat thread's work is left out: it is the process's, once a
beat, not a turn's; the heartbeat rows a turn itself writes are listed apart (`heartbeat`).
"""

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from unittest import mock

from django.db import connections
from django.db.backends.signals import connection_created

from conversations.models import DailySpend, ProcessHeartbeat

_BUDGET_TABLE = DailySpend._meta.db_table
_HEARTBEAT_TABLE = ProcessHeartbeat._meta.db_table
# Transactions are counted as they end (a COMMIT or ROLLBACK, through Django's connection;
# inside a test's own transaction, savepoints stand in for them). SQLite's transaction mode
# has Django send its BEGIN as a statement; psycopg sends PostgreSQL's itself.
_TRANSACTION_STARTS = ("BEGIN", "SAVEPOINT")
_TRANSACTION_ENDS = ("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@dataclass
class DatabaseWork:
    statements: list[str] = field(default_factory=list)  # the turn's own SQL, in order
    budget: list[str] = field(default_factory=list)  # daily token budget statements
    heartbeat: list[str] = field(default_factory=list)  # this process's sign of life
    transactions: int = 0  # commits and rollbacks (savepoints released or rolled back)
    checkouts: int = 0  # connections opened: taken from the pool, on PostgreSQL

    def summary(self) -> dict[str, list[str]]:
        """The statements, abbreviated, by kind."""
        return {
            "statements": [abbreviated(sql) for sql in self.statements],
            "budget": [abbreviated(sql) for sql in self.budget],
            "heartbeat": [abbreviated(sql) for sql in self.heartbeat],
        }


def abbreviated(sql: str, width: int = 80) -> str:
    """A statement's first `width` characters, without quotes or line breaks."""
    return " ".join(sql.replace('"', "").split())[:width]


def _counted() -> bool:
    return threading.current_thread().name != "chatkit-heartbeat"


@contextlib.contextmanager
def database_work() -> Iterator[DatabaseWork]:
    """Count the database work done meanwhile, in every thread but the heartbeat's."""
    work = DatabaseWork()
    lock = threading.Lock()
    wrapped = []

    def record(execute, sql, params, many, context):
        if _counted():
            text = sql if isinstance(sql, str) else str(sql)
            upper = text.lstrip().upper()
            with lock:
                if upper.startswith(_TRANSACTION_ENDS):
                    work.transactions += 1
                elif upper.startswith(_TRANSACTION_STARTS):
                    pass
                elif _BUDGET_TABLE in text:
                    work.budget.append(text)
                elif _HEARTBEAT_TABLE in text:
                    work.heartbeat.append(text)
                else:
                    work.statements.append(text)
        return execute(sql, params, many, context)

    def watch(connection) -> None:
        if record not in connection.execute_wrappers:
            connection.execute_wrappers.append(record)
            wrapped.append(connection)

    def on_connect(sender, connection, **kwargs) -> None:
        watch(connection)
        if _counted():
            with lock:
                work.checkouts += 1

    def ended(original):
        def end(self, *args, **kwargs):
            if _counted() and not self.in_atomic_block:  # a real COMMIT or ROLLBACK
                with lock:
                    work.transactions += 1
            return original(self, *args, **kwargs)

        return end

    database = type(connections["default"])
    for connection in connections.all(initialized_only=True):  # this thread's, already open
        watch(connection)
    connection_created.connect(on_connect)
    try:
        with (
            mock.patch.object(database, "commit", ended(database.commit)),
            mock.patch.object(database, "rollback", ended(database.rollback)),
        ):
            yield work
    finally:
        connection_created.disconnect(on_connect)
        for connection in wrapped:
            with contextlib.suppress(ValueError):
                connection.execute_wrappers.remove(record)

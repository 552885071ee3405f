"""This process's sign of life, for the replies it writes.

A reply being written is `streaming` and names its owner, this process's id. While the process
owns any, one background thread writes one `ProcessHeartbeat` row every
CHATKIT_HEARTBEAT_SECONDS (one write per process, however many replies). Another process that
finds a `streaming` reply whose owner has missed three beats knows its writer is gone (a
killed worker) and ends it, so a conversation is never blocked for longer than that; a reply
whose owner still beats is never touched, so restarts and rolling deploys cut nothing.

The same thread retries, with back-off, a reply's final write that failed (the database went
away mid-turn): the reply stays owned, and blocking, only until the write goes through. And
once a beat it sweeps up after processes that are gone: their replies are ended (through
services.turns, which registers the sweep) and, after a day, their heartbeat rows deleted.
"""

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from conversations.models import ProcessHeartbeat

logger = logging.getLogger(__name__)

MISSED_BEATS = 3
RETRY_FIRST_SECONDS = 0.25

_lock = threading.Lock()
_wake = threading.Event()
_state: dict = {"pid": None, "id": "", "beat_at": None, "thread": None}
_owned: set[int] = set()
_retries: dict[int, "_Retry"] = {}


def process_id() -> str:
    """This process's id: host, pid and a random part (pids are reused across restarts)."""
    pid = os.getpid()
    with _lock:
        if _state["pid"] != pid:  # first call, or a forked child
            host = socket.gethostname()[:60]
            _state.update(pid=pid, id=f"{host}:{pid}:{secrets.token_hex(4)}", beat_at=None)
            _owned.clear()
            _retries.clear()
            _state["thread"] = None
        return _state["id"]


def liveness() -> timedelta:
    return timedelta(seconds=settings.CHATKIT_HEARTBEAT_SECONDS * MISSED_BEATS)


def alive_since(now: datetime) -> datetime:
    """A process whose last beat is older than this is gone."""
    return now - liveness()


def beat_now() -> str:
    """Store a beat unless one is stored within the last beat interval (call it before
    creating a reply, outside any transaction, so the reply never names a process that has
    no heartbeat yet). While replies are written the heartbeat thread beats every interval,
    so a busy process's turns store none: at most one a beat interval does, after a pause."""
    owner = process_id()
    now = timezone.now()
    last = _state["beat_at"]
    if last is None or now - last > timedelta(seconds=settings.CHATKIT_HEARTBEAT_SECONDS):
        _beat_store(owner, now)
        _state["beat_at"] = now
    return owner


def _beat_store(owner: str, now: datetime) -> None:
    # One statement, no transaction: only this process writes its row (the INSERT is for its
    # first beat, or one after a day's pause, when _forget_gone has deleted it).
    if not ProcessHeartbeat.objects.filter(process=owner).update(beat_at=now):
        ProcessHeartbeat.objects.bulk_create(
            [ProcessHeartbeat(process=owner, beat_at=now)], ignore_conflicts=True
        )


def own(reply_pk: int) -> None:
    """This process writes this reply now: keep beating until it is `disown`ed."""
    process_id()
    with _lock:
        _owned.add(reply_pk)
    start()


def disown(reply_pk: int) -> None:
    with _lock:
        _owned.discard(reply_pk)
        _retries.pop(reply_pk, None)


def owns(reply_pk: int) -> bool:
    with _lock:
        return reply_pk in _owned


def writing() -> frozenset[int]:
    """The replies this process writes now."""
    with _lock:
        return frozenset(_owned)


class _Retry:
    def __init__(self, write: Callable[[], object]):
        self.write = write
        # Not at once: the write has just failed (and the turn may be storing its reply
        # another way meanwhile).
        self.delay = RETRY_FIRST_SECONDS
        self.due = time.monotonic() + self.delay


def retry_later(reply_pk: int, write: Callable[[], object]) -> None:
    """Retry a reply's failed final write, with back-off, until it goes through (or another
    write of the same reply replaces it: the first one queued is kept, it knew the most)."""
    with _lock:
        if reply_pk in _retries or reply_pk not in _owned:
            return
        _retries[reply_pk] = _Retry(write)
    _wake.set()


_sweepers: list[Callable[[], object]] = []


def on_every_beat(sweep: Callable[[], object]) -> None:
    """Run `sweep` once a beat, in every process that serves (services.turns ends the replies
    of processes that are gone with it, so no reply holds its budget until someone writes)."""
    _sweepers.append(sweep)


def start() -> None:
    """Start this process's heartbeat thread now (a serving process, at start-up), rather than
    with its first reply: it also sweeps up after processes that died."""
    process_id()
    with _lock:
        if _state["thread"] is None:
            _state["thread"] = threading.Thread(target=_run, name="chatkit-heartbeat", daemon=True)
            _state["thread"].start()


def _run() -> None:
    interval = settings.CHATKIT_HEARTBEAT_SECONDS
    next_beat = time.monotonic() + interval
    while True:
        with _lock:
            due = [next_beat, *(retry.due for retry in _retries.values())]
        _wake.wait(max(0.0, min(due) - time.monotonic()))
        _wake.clear()
        try:
            if time.monotonic() >= next_beat:
                with _lock:
                    busy = bool(_owned)
                beaten = _beat() if busy else True
                # A beat that failed is tried again soon: three missed, and another process
                # would take this one's replies for abandoned.
                next_beat = time.monotonic() + (interval if beaten else min(interval, 0.5))
                if beaten:
                    _sweep()
            _retry_due(cap=interval)
        finally:
            connection.close()  # this thread's; back to the pool between beats


def _beat() -> bool:
    now = timezone.now()
    try:
        _beat_store(process_id(), now)
    except Exception as exc:  # the database is away: tried again shortly
        logger.warning("heartbeat not stored: %r", exc)
        return False
    _state["beat_at"] = now
    return True


def _sweep() -> None:
    for sweep in [*_sweepers, _forget_gone]:
        try:
            sweep()
        except Exception as exc:  # the database is away, say: the next beat sweeps again
            logger.warning("sweeping up after gone processes failed: %r", exc)


FORGOTTEN_AFTER = timedelta(days=1)


def _forget_gone() -> None:
    """Delete the heartbeats of processes gone for a day (every restart leaves one)."""
    ProcessHeartbeat.objects.filter(beat_at__lt=timezone.now() - FORGOTTEN_AFTER).delete()


def _retry_due(*, cap: float) -> None:
    now = time.monotonic()
    with _lock:
        due = [(pk, retry) for pk, retry in _retries.items() if retry.due <= now]
    for pk, retry in due:
        try:
            retry.write()
        except Exception as exc:
            retry.delay = min(retry.delay * 2, cap)
            retry.due = time.monotonic() + retry.delay
            logger.warning(
                "a reply's final write failed again (retrying in %.1fs): %r", retry.delay, exc
            )
        else:
            logger.info("a reply's final write went through on a retry")
            disown(pk)

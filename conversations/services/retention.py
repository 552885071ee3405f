"""Retention: conversations idle past the retention period go, in short batches."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from conversations import selectors
from conversations.exceptions import AssistantNotFound, InvalidInput
from conversations.models import Assistant, Message, Session

# The name operators filter on since the first release.
logger = logging.getLogger("conversations.services")

PURGE_BATCH_SIZE = 1000
# A batch's ids travel as query parameters and its rows stay locked until it commits.
PURGE_MAX_BATCH_SIZE = 10_000


@dataclass
class PurgeReport:
    """What a purge, or one batch of it, deleted (with `dry_run`: would delete)."""

    cutoff: datetime
    dry_run: bool = False
    batches: int = 0
    sessions: int = 0
    messages: int = 0
    # Idle conversations kept because a reply is being written in them.
    in_flight: int = 0

    def add(self, batch: "PurgeReport") -> None:
        self.batches += 1
        self.sessions += batch.sessions
        self.messages += batch.messages
        self.in_flight += batch.in_flight


def session_purge(
    *,
    older_than: timedelta,
    assistant_slug: str | None = None,
    batch_size: int = PURGE_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
    on_batch: Callable[[PurgeReport, PurgeReport], None] | None = None,
    log: bool = True,
) -> PurgeReport:
    """Delete conversations idle for longer than `older_than`, with their messages, in batches.

    Each batch is one short transaction and no message is loaded into memory, so a purge of
    millions holds no lock for long and runs in flat memory. A conversation with a reply in
    flight is kept and counted; a reply abandoned by a dead process does not count as in
    flight, and goes with its conversation. `on_batch(batch, total)` follows the progress;
    `log=False` leaves out the summary line in the log (a command told to be quiet).
    """
    now = now or timezone.now()
    idle, cutoff = _idle_sessions(older_than=older_than, assistant_slug=assistant_slug, now=now)
    if not 1 <= batch_size <= PURGE_MAX_BATCH_SIZE:
        raise InvalidInput(f"The batch size must be between 1 and {PURGE_MAX_BATCH_SIZE}.")
    reply_in_flight = Exists(selectors.replies_in_flight(now=now).filter(session=OuterRef("pk")))
    total = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    last_pk = 0
    while True:
        # Keyset pagination: each batch starts after the last id seen, so conversations kept
        # for a reply in flight (or in a dry run, all of them) are not seen twice.
        ids = list(
            idle.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        last_pk = ids[-1]
        batch = session_purge_batch(
            idle, ids, cutoff=cutoff, reply_in_flight=reply_in_flight, dry_run=dry_run
        )
        total.add(batch)
        if on_batch is not None:
            on_batch(batch, total)
    if log:
        _log(total)
    return total


def _idle_sessions(
    *, older_than: timedelta, assistant_slug: str | None, now: datetime
) -> tuple[QuerySet[Session], datetime]:
    """The conversations idle since before `now - older_than` (of one assistant), and that
    cutoff; InvalidInput or AssistantNotFound for arguments that make no sense."""
    if older_than <= timedelta(0):
        raise InvalidInput("The age must be more than zero.")
    try:
        cutoff = now - older_than
    except OverflowError:
        raise InvalidInput("The age is too large.") from None
    idle = Session.objects.filter(last_activity_at__lt=cutoff)
    if assistant_slug is not None:
        assistant = Assistant.objects.filter(slug=assistant_slug).first()
        if assistant is None:
            raise AssistantNotFound(f"There is no assistant with the slug {assistant_slug!r}.")
        idle = idle.filter(assistant=assistant)
    return idle, cutoff


def _log(total: PurgeReport) -> None:
    logger.info(
        "purge%s: cutoff=%s conversations=%s messages=%s in_flight=%s batches=%s",
        " (dry run)" if total.dry_run else "",
        total.cutoff.isoformat(),
        total.sessions,
        total.messages,
        total.in_flight,
        total.batches,
    )


def session_purge_batch(
    idle: QuerySet[Session],
    ids: list[int],
    *,
    cutoff: datetime,
    reply_in_flight: Exists,
    dry_run: bool,
) -> PurgeReport:
    """Delete one batch of idle conversations (by id) and their messages, in one transaction."""
    batch = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    rows = (
        idle.filter(pk__in=ids)
        .annotate(busy=reply_in_flight)
        .order_by("pk")  # one lock order for every purge, and no sort by the model's ordering
        .values_list("pk", "busy")
    )
    if dry_run:
        rows = list(rows)
        doomed = [pk for pk, busy in rows if not busy]
        batch.in_flight = len(rows) - len(doomed)
        batch.sessions = len(doomed)
        batch.messages = Message.objects.filter(session_id__in=doomed).count()
        return batch
    with transaction.atomic():
        # Lock the batch: a turn starting now waits, then finds its conversation gone. One that
        # began meanwhile made its conversation active again, and the cutoff, re-checked on the
        # locked row (and again in the DELETEs), keeps it.
        rows = list(rows.select_for_update())
        doomed = [pk for pk, busy in rows if not busy]
        batch.in_flight = len(rows) - len(doomed)
        if not doomed:
            return batch
        gone = idle.filter(pk__in=doomed)
        # Raw deletes: Django's cascade would first load every message row into memory.
        batch.messages = Message.objects.filter(session__in=gone.values("pk"))._raw_delete(gone.db)
        batch.sessions = gone._raw_delete(gone.db)
    return batch

"""The audit log as CSV, streamed a batch at a time (as the conversation exports are)."""

import csv
import json
from collections.abc import AsyncIterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from audit import selectors
from audit.models import AuditEvent
from conversations.admin.exports import CsvLine, csv_cell
from conversations.db import db_step

BATCH_SIZE = 500
CSV_COLUMNS = [
    "id",
    "at",
    "actor_type",
    "actor_id",
    "actor",
    "action",
    "conversation",
    "ip_hash",
    "details",
]


def _row(event: AuditEvent) -> list:
    return [
        event.pk,
        event.at.isoformat(),
        event.actor_type,
        event.actor_id,
        event.actor,
        event.action,
        event.conversation,
        event.ip_hash,
        json.dumps(event.details, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True),
    ]


async def csv_lines(events: QuerySet[AuditEvent], *, batch_size: int = BATCH_SIZE):
    """A header, then one row per event, in id order (keyset pagination, one short database
    step per batch)."""
    writer = csv.writer(CsvLine())
    yield writer.writerow(CSV_COLUMNS)
    fetch = db_step(selectors.audit_events_batch)
    after = 0
    while True:
        batch = await fetch(events, after=after, size=batch_size)
        if batch:
            yield "".join(writer.writerow([csv_cell(v) for v in _row(e)]) for e in batch)
        if len(batch) < batch_size:
            return
        after = batch[-1].pk


def export_response(events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
    """A CSV download of `events`."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    lines: AsyncIterator[str] = csv_lines(events)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response

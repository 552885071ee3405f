"""Encryption at rest, operated: the canary that proves the key, and rotation.

`encryption_rotate` walks every sealed column (fields.encrypted_fields) by primary key, one
short transaction a batch, and rewrites each value not sealed with the primary key (plaintext,
or an older key's) under it. A row is rewritten only if it still holds what was read: one
written meanwhile (by a turn, which seals with the primary key anyway) is left as it is.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction

from conversations import encryption, selectors
from conversations.fields import EncryptedField, EncryptedJSONField, encrypted_fields
from conversations.models import EncryptionCanary
from conversations.selectors.encryption import CANARY_TEXT

ROTATE_BATCH_SIZE = 500


@dataclass(frozen=True)
class RotateProgress:
    column: str  # table.column
    last_pk: int
    rewritten: int  # in this column so far


def encryption_canary_check() -> list[str]:
    """Why the configured keys do not fit this database's text, one sentence each (empty: they
    do). With keys and no canary yet (the first start with them), the canary is written."""
    stored = selectors.encryption_canary_stored()
    if stored is None and encryption.keyring().on:
        # Another process starting may write it first: then its key is checked next start.
        EncryptionCanary.objects.get_or_create(pk=1, defaults={"value": CANARY_TEXT})
    problem = selectors.encryption_canary_problem(stored)
    return [] if problem is None else [problem]


def _stored_text(field: EncryptedField, raw: Any) -> str | None:
    """What carries a stored value's seal, as the database returned it: the text, or for a JSON
    column the JSON string it holds (None for a JSON object: plaintext)."""
    if raw is None:
        return None
    if isinstance(field, EncryptedJSONField):
        value = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return value if isinstance(value, str) else None
    return raw


def _needs_sealing(field: EncryptedField, raw: Any, primary: str) -> bool:
    if isinstance(field, EncryptedJSONField):
        text = _stored_text(field, raw)
        return text is None or encryption.sealed_key_id(text) != primary
    return bool(raw) and encryption.sealed_key_id(raw) != primary


def encryption_rotate(
    *,
    batch_size: int = ROTATE_BATCH_SIZE,
    progress: Callable[[RotateProgress], None] | None = None,
) -> int:
    """Seal every value of every sealed column with the primary key; returns how many were
    rewritten. Raises ValueError when encryption is off (there is no key to seal with)."""
    ring = encryption.keyring()
    if ring.primary is None:
        raise ValueError("CHATKIT_ENCRYPTION_KEYS is unset: there is no key to encrypt with")
    total = 0
    for model, field in encrypted_fields():
        rewritten, last_pk = 0, 0
        while True:
            done, last_pk, count = _rotate_batch(
                model, field, after=last_pk, size=batch_size, primary=ring.primary[0]
            )
            rewritten += done
            if progress is not None and count:
                progress(RotateProgress(_column_name(model, field), last_pk, rewritten))
            if count < batch_size:
                break
        total += rewritten
    return total


def _column_name(model: type[models.Model], field: models.Field) -> str:
    return f"{model._meta.db_table}.{field.column}"


def _rotate_batch(
    model: type[models.Model], field: Any, *, after: int, size: int, primary: str
) -> tuple[int, int, int]:
    """One batch, one transaction: (rows rewritten, last primary key read, rows read)."""
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(field.column)
    pk = quote(model._meta.pk.column)
    rewritten = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk}, {column} FROM {table} WHERE {pk} > %s ORDER BY {pk} LIMIT %s",  # noqa: S608
            [after, size],
        )
        rows = cursor.fetchall()
        for row_pk, raw in rows:
            if not _needs_sealing(field, raw, primary):
                continue
            value = field.from_db_value(raw, None, connection)
            # Only if it still holds what was read (jsonb compared as jsonb).
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {pk} = %s "  # noqa: S608
                f"AND {_comparable(field, column)} = {_comparable(field, '%s')}",
                [field.get_db_prep_save(value, connection), row_pk, _raw_param(field, raw)],
            )
            rewritten += cursor.rowcount
    return rewritten, (rows[-1][0] if rows else after), len(rows)


def _comparable(field: Any, sql: str) -> str:
    if isinstance(field, EncryptedJSONField) and connection.vendor == "postgresql":
        return f"CAST({sql} AS jsonb)"
    return sql


def _raw_param(field: Any, raw: Any) -> Any:
    if isinstance(field, EncryptedJSONField) and not isinstance(raw, str | bytes):
        return json.dumps(raw)
    return raw

"""Encryption at rest, read: how much stored text each key holds (for rotation: zero means a
key can go), and whether the configured keys open the database's canary."""

import functools
from collections import Counter

from django.conf import settings
from django.db import connection

from conversations import encryption
from conversations.fields import encrypted_fields
from conversations.models import EncryptionCanary

PLAINTEXT = "plaintext"


def encrypted_rows_by_key() -> dict[str, Counter]:
    """Per sealed column (`table.column`), its non-empty values by the id of the key that
    sealed them, or PLAINTEXT. Reads every value's first characters only."""
    quote = connection.ops.quote_name
    prefix = len(encryption.SEALED) + len(encryption.key_id(""))
    found = {}
    for model, field in encrypted_fields():
        column = quote(field.column)
        # A JSON column's sealed value is a JSON string: its text starts with a quote.
        as_text = f"CAST({column} AS text)" if connection.vendor == "postgresql" else column
        json_quote = 1 if field.get_internal_type() == "JSONField" else 0
        non_empty = "" if json_quote else f"WHERE {column} <> '' "
        counts = Counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT SUBSTR({as_text}, {1 + json_quote}, {prefix}), COUNT(*) "  # noqa: S608
                f"FROM {quote(model._meta.db_table)} {non_empty}"
                f"GROUP BY SUBSTR({as_text}, {1 + json_quote}, {prefix})",
            )
            for head, count in cursor.fetchall():
                kid = encryption.sealed_key_id(head or "")
                counts[kid or PLAINTEXT] += count
        found[f"{model._meta.db_table}.{field.column}"] = counts
    return found


CANARY_TEXT = "ChatKit encryption canary"


def encryption_canary_stored() -> str | None:
    """The canary as the database holds it (None: not written yet). One statement."""
    quote = connection.ops.quote_name
    table = quote(EncryptionCanary._meta.db_table)
    column = quote(EncryptionCanary._meta.get_field("value").column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else row[0]


def encryption_canary_problem(stored: str | None) -> str | None:
    """Why the configured keys do not fit a database whose canary is `stored`, or None."""
    return _canary_problem(stored, tuple(settings.CHATKIT_ENCRYPTION_KEYS))


@functools.lru_cache(maxsize=8)  # a readiness probe asks every few seconds: decrypt once
def _canary_problem(stored: str | None, keys: tuple[str, ...]) -> str | None:
    ring = encryption.keyring_for(keys)
    if stored is None or not encryption.is_sealed(stored):
        return None  # none yet; or written before encryption, for rotation to seal
    kid = encryption.sealed_key_id(stored)
    if not ring.on:
        return (
            "the database holds encrypted text but CHATKIT_ENCRYPTION_KEYS is unset: set the "
            "keys it was encrypted with"
        )
    try:
        opened = encryption.unseal(stored, ring=ring)
    except encryption.KeyMissing:
        return (
            "CHATKIT_ENCRYPTION_KEYS lacks the key this database's text is encrypted with (its "
            f"canary names key {kid}, the keys given are {', '.join(ring.by_id)}): refusing to "
            "serve text it cannot read"
        )
    except encryption.InvalidToken:
        opened = None
    if opened != CANARY_TEXT:
        return (
            f"CHATKIT_ENCRYPTION_KEYS: key {kid} does not open this database's canary (a wrong "
            "key, or a tampered value): refusing to serve text it cannot read"
        )
    return None

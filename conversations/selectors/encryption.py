"""How much stored text each encryption key holds (for rotation: zero means a key can go)."""

from collections import Counter

from django.db import connection

from conversations import encryption
from conversations.fields import encrypted_fields

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

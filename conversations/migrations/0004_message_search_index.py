"""A trigram index for the admin's search in message text (PostgreSQL only).

The admin searches `messages__content` with `icontains`, which Django renders on PostgreSQL as
`UPPER("conversations_message"."content"::text) LIKE UPPER('%term%')`: a leading wildcard no
B-tree can serve, but a GIN trigram index on that very expression can.

Why not `Meta.indexes = [GinIndex(OpClass(Upper("content"), name="gin_trgm_ops"), ...)]`:
SQLite cannot create it (`near "gin_trgm_ops": syntax error`), and once in the model state
SQLite would try again whenever it rebuilds the table for a later AlterField. So the index lives
here only, created on PostgreSQL and skipped elsewhere; the model state does not know it, and
`makemigrations` has nothing to add on either database.

Built CONCURRENTLY (so the migration is not atomic) so that a deployment with millions of
messages keeps taking chat turns while it builds. pg_trgm is a trusted extension (PostgreSQL
13+): the database owner may create it without being a superuser.
"""

from django.db import migrations

INDEX = "message_content_upper_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # A concurrent build that failed half-way leaves an invalid index: build it again.
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [INDEX],
        )
        row = cursor.fetchone()
        if row is not None and not row[0]:
            cursor.execute(f'DROP INDEX CONCURRENTLY "{INDEX}"')
        cursor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON "conversations_message" '
            'USING gin ((UPPER("content")) gin_trgm_ops)'
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # The extension stays: other things in this database may use it.
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0003_conversation_reviewers"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]

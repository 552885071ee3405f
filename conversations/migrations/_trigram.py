"""Trigram indexes for the admin's search, on PostgreSQL only (helpers for migrations).

The admin searches with `icontains`, which Django renders on PostgreSQL as
`UPPER(column::text) LIKE UPPER('%term%')`: a leading wildcard no B-tree can serve, but a GIN
trigram index on that very expression can.

Why not `Meta.indexes = [GinIndex(OpClass(Upper(...), name="gin_trgm_ops"), ...)]`: SQLite
cannot create it (`near "gin_trgm_ops": syntax error`), and once in the model state SQLite
would try again whenever it rebuilds the table for a later AlterField. So these indexes live
in migrations only, created on PostgreSQL and skipped elsewhere; the model state does not know
them, and `makemigrations` has nothing to add on either database.

Built CONCURRENTLY (so their migrations are not atomic) so that a deployment with millions of
messages keeps taking chat turns while one builds. pg_trgm is a trusted extension (PostgreSQL
13+): the database owner may create it without being a superuser.

(The migration loader skips modules whose names start with an underscore.)
"""


from django.db import migrations


def trigram_index(index: str, table: str, column: str) -> migrations.RunPython:
    """The migration operation that builds (and, reversed, drops) one trigram index."""

    def create(apps, schema_editor):
        create_trigram_index(schema_editor, index, table, column)

    def drop(apps, schema_editor):
        drop_trigram_index(schema_editor, index)

    return migrations.RunPython(create, drop, elidable=False)


def create_trigram_index(schema_editor, index: str, table: str, column: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # A concurrent build that failed half-way leaves an invalid index: build it again.
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [index],
        )
        row = cursor.fetchone()
        if row is not None and not row[0]:
            cursor.execute(f'DROP INDEX CONCURRENTLY "{index}"')
        cursor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index}" ON "{table}" '
            f'USING gin ((UPPER("{column}")) gin_trgm_ops)'
        )


def drop_trigram_index(schema_editor, index: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # The extension stays: other things in this database may use it.
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"')

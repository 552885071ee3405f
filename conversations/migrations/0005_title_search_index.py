"""A trigram index for the admin's search in conversation titles (PostgreSQL only; see
_trigram): with it, every part of a search is served by an index, and a search for a rare
word reads no table from end to end."""

from django.db import migrations

from conversations.migrations._trigram import create_trigram_index, drop_trigram_index

INDEX = "session_title_upper_trgm"


def create_index(apps, schema_editor):
    create_trigram_index(schema_editor, INDEX, "conversations_session", "title")


def drop_index(apps, schema_editor):
    drop_trigram_index(schema_editor, INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0004_message_search_index"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]

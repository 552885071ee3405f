"""A trigram index for the admin's search in message text (PostgreSQL only; see _trigram)."""

from django.db import migrations

from conversations.migrations._trigram import create_trigram_index, drop_trigram_index

INDEX = "message_content_upper_trgm"


def create_index(apps, schema_editor):
    create_trigram_index(schema_editor, INDEX, "conversations_message", "content")


def drop_index(apps, schema_editor):
    drop_trigram_index(schema_editor, INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0003_conversation_reviewers"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]

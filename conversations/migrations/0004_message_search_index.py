"""A trigram index for the admin's search in message text (PostgreSQL only; see _trigram)."""

from django.db import migrations

from conversations.migrations._trigram import trigram_index


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0003_conversation_reviewers"),
    ]

    operations = [
        trigram_index("message_content_upper_trgm", "conversations_message", "content"),
    ]

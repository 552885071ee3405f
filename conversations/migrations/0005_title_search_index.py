"""A trigram index for the admin's search in conversation titles (PostgreSQL only; see
_trigram): with it, every part of a search is served by an index, and a search for a rare
word reads no table from end to end."""

from django.db import migrations

from conversations.migrations._trigram import trigram_index


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0004_message_search_index"),
    ]

    operations = [
        trigram_index("session_title_upper_trgm", "conversations_session", "title"),
    ]

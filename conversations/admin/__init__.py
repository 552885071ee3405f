"""Staff review of assistants and conversations (each module registers its model admin)."""

from conversations.admin import assistants, conversations, site

__all__ = ["assistants", "conversations", "site"]

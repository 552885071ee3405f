"""Writes, by sub-domain; views, the admin and commands import them from here.

- sessions: start a conversation, delete one or many
- turns: the chat-turn pipeline (open, events, end) for every entry point
- budgets: tokens reserved and spent of an assistant's daily budget
- feedback: the visitor's rating of a reply
- retention: purging conversations idle past the retention period
- encryption: the encryption key's canary, and rotation to the newest key
- identity: assistants' identity secrets (signed-in visitors)
"""

from conversations.services.encryption import (
    ROTATE_BATCH_SIZE,
    RotateProgress,
    encryption_canary_check,
    encryption_rotate,
)
from conversations.services.feedback import message_feedback_set
from conversations.services.identity import identity_secret_rotate
from conversations.services.retention import (
    PURGE_BATCH_SIZE,
    PURGE_MAX_BATCH_SIZE,
    PurgeReport,
    session_purge,
)
from conversations.services.sessions import (
    DeleteReport,
    session_create,
    session_delete,
    session_delete_many,
    session_start,
    visitor_sessions_delete,
)
from conversations.services.turns import (
    Turn,
    TurnEvent,
    message_post,
    turn_end,
    turn_end_blocking,
    turn_end_sync,
    turn_events,
    turn_open,
    turn_open_sync,
    turn_start,
)

__all__ = [
    "PURGE_BATCH_SIZE",
    "PURGE_MAX_BATCH_SIZE",
    "ROTATE_BATCH_SIZE",
    "DeleteReport",
    "PurgeReport",
    "RotateProgress",
    "Turn",
    "TurnEvent",
    "encryption_canary_check",
    "encryption_rotate",
    "identity_secret_rotate",
    "message_feedback_set",
    "message_post",
    "session_create",
    "session_delete",
    "session_delete_many",
    "session_purge",
    "session_start",
    "turn_end",
    "turn_end_blocking",
    "turn_end_sync",
    "turn_events",
    "turn_open",
    "turn_open_sync",
    "turn_start",
    "visitor_sessions_delete",
]

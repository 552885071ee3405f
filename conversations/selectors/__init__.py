"""Reads, by what they read; callers import them from here.

- assistants: an assistant, and what the widget may know of it
- budgets: what assistants spent of their daily token budgets today
- sessions: conversations as a visitor reaches them, a page of messages at a time; a
  signed-in visitor's conversations, a page at a time
- replies: replies in flight (one at a time per conversation), and a turn's context
- staff: the admin's numbers, search, filters and transcripts
- overview: the last days in numbers
- exports: conversations a batch at a time
- encryption: stored values by the key that encrypted them
"""

from conversations.selectors.assistants import (
    DEFAULT_ASSISTANT,
    assistant_get,
    assistant_widget_config,
    identity_in_use,
)
from conversations.selectors.budgets import spent_today, with_spent_today
from conversations.selectors.encryption import (
    PLAINTEXT,
    encrypted_rows_by_key,
    encryption_canary_problem,
    encryption_canary_stored,
)
from conversations.selectors.exports import conversations_batch
from conversations.selectors.overview import overview_numbers
from conversations.selectors.replies import (
    ABANDONED_MARGIN,
    abandoned_before,
    replies_in_flight,
    reply_abandoned,
    reply_streaming,
    turn_context,
)
from conversations.selectors.sessions import (
    PAGE_SIZE,
    VISITOR_SESSIONS_PAGE_SIZE,
    session_get,
    session_messages_page,
    visitor_sessions_page,
)
from conversations.selectors.staff import (
    CONVERSATION_NUMBERS,
    conversation_number,
    conversation_numbers,
    conversation_search,
    conversations_having,
    conversations_size,
    session_transcript,
)

__all__ = [
    "ABANDONED_MARGIN",
    "CONVERSATION_NUMBERS",
    "DEFAULT_ASSISTANT",
    "PAGE_SIZE",
    "PLAINTEXT",
    "VISITOR_SESSIONS_PAGE_SIZE",
    "abandoned_before",
    "assistant_get",
    "assistant_widget_config",
    "conversation_number",
    "conversation_numbers",
    "conversation_search",
    "conversations_batch",
    "conversations_having",
    "conversations_size",
    "encrypted_rows_by_key",
    "encryption_canary_problem",
    "encryption_canary_stored",
    "identity_in_use",
    "overview_numbers",
    "replies_in_flight",
    "reply_abandoned",
    "reply_streaming",
    "session_get",
    "session_messages_page",
    "session_transcript",
    "spent_today",
    "turn_context",
    "visitor_sessions_page",
    "with_spent_today",
]

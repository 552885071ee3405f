"""The one log line each chat turn ends with: numbers, never what people wrote unless asked.

The conversation is named by its database id, never by its public id (the visitor's secret).
What people wrote is logged only with CHATKIT_LOG_CONTENT=true.
"""

import json
import logging
import re
from typing import Any

from django.conf import settings

from conversations.models import Message

# The name operators filter on since the first release.
logger = logging.getLogger("conversations.services")

_BARE = re.compile(r"[\w.:/@+-]*")


def turn_logged(*, assistant: str, reply: Message, question: str | None) -> None:
    """Log a turn whose reply has just been stored, once, as `key=value` pairs."""
    fields: dict[str, Any] = {
        "assistant": assistant,
        "conversation": reply.session_id,
        "seq": reply.seq,
        "status": reply.status,
        "model": reply.model,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "ttft_ms": reply.ttft_ms,
        "duration_ms": reply.duration_ms,
        "error": reply.error_code or None,
    }
    if settings.CHATKIT_LOG_CONTENT:
        fields["question"] = question
        fields["reply"] = reply.content
    text = " ".join(f"{key}={logfmt(value)}" for key, value in fields.items())
    logger.info("turn ended: %s", text, extra={"turn": fields})


def logfmt(value: Any) -> str:
    """A value as logfmt writes it: bare when it can be, else quoted as JSON."""
    if value is None:
        return "-"
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)

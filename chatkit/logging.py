"""Log filters and formatters."""

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import unquote

from chatkit.routes import SESSION_ID_IN_PATH
from conversations.ids import SESSION_ID_LENGTH, URLSAFE

# A session id anywhere else than a path, e.g. one that staff searched the admin for: an id's
# length of URL-safe characters, standing on their own.
_SESSION_ID = re.compile(rf"(?<![{URLSAFE}])[{URLSAFE}]{{{SESSION_ID_LENGTH}}}(?![{URLSAFE}])")
# Search terms in URLs (the admin's ?q=, also inside ?next= and ?_changelist_filters=).
_SEARCH_QUERY = re.compile(r"([?&=]q=)[^&\s\"]*")


def _decoded(text: str) -> str:
    """The text with percent-escapes undone, however many times a URL was nested."""
    for _ in range(3):
        once = unquote(text)
        if once == text:
            break
        text = once
    return text


def redact(text: str) -> str:
    """The text without session ids or URL search terms (decoded, if that was needed)."""
    plain = _decoded(text)
    redacted = SESSION_ID_IN_PATH.sub(r"\1<id>", plain)
    redacted = _SEARCH_QUERY.sub(r"\1<redacted>", redacted)
    redacted = _SESSION_ID.sub("<id>", redacted)
    return text if redacted == plain else redacted


class RedactSessionIds(logging.Filter):
    """Keep session ids out of every log line (Django's "Not Found: /path", access logs, and
    the admin's search URLs), and search terms, where staff may have typed one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a turn's fields when the
    line reports one (`extra={"turn": {...}}`), for log collectors to index."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        turn = getattr(record, "turn", None)
        if isinstance(turn, dict):
            entry["turn"] = turn
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

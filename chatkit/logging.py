"""Log filters and formatters."""

import json
import logging
import re
from datetime import UTC, datetime

# Session ids travel in URL paths (/api/v1/sessions/<id>/...) and are visitors' secrets.
_SESSION_PATH = re.compile(r"(/sessions/)[A-Za-z0-9_-]{16,64}")


# Search terms in URLs (the admin's ?q=): staff search conversations by a session id.
_SEARCH_QUERY = re.compile(r"([?&]q=)[^&\s\"]*")


class RedactSessionIds(logging.Filter):
    """Replace session ids in log lines (Django's "Not Found: /path", access logs) with <id>,
    and search terms in URLs, where staff may have typed one, with <redacted>."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SEARCH_QUERY.sub(r"\1<redacted>", _SESSION_PATH.sub(r"\1<id>", message))
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

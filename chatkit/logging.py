"""Log filters."""

import logging
import re

# Session ids travel in URL paths (/api/v1/sessions/<id>/...) and are visitors' secrets.
_SESSION_PATH = re.compile(r"(/sessions/)[A-Za-z0-9_-]{16,64}")


class RedactSessionIds(logging.Filter):
    """Replace session ids in log lines (Django's "Not Found: /path", access logs) with <id>."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SESSION_PATH.sub(r"\1<id>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

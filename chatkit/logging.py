"""Log filters and formatters, and the logging configuration uvicorn and Django share."""

import copy
import json
import logging
import logging.config
import os
import re
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from chatkit.routes import V1_SESSIONS
from conversations.ids import SESSION_ID, SESSION_ID_LENGTH, URLSAFE

# Redaction masks what it finds in the line as it was written and never decodes it: a
# decoded line would let `%0a` in a URL start a line of the attacker's own.


def _escaped(char: str) -> str:
    """A pattern for the character percent-escaped, however many times its URL was nested
    (`/` as `%2F`, `%252F`, `%25252F`)."""
    return rf"%(?:25)*(?i:{ord(char):02X})"


def _char(char: str) -> str:
    """A pattern for the character as it is, or percent-escaped."""
    return rf"(?:{re.escape(char)}|{_escaped(char)})"


# Where a session id stands in a logged URL, also one nested in another's query (`?next=`).
_SESSION_ID_IN_PATH = re.compile(
    rf"({_char('/')}{V1_SESSIONS.rsplit('/', 1)[-1]}{_char('/')}){SESSION_ID}"
)
# A session id anywhere else, e.g. one that staff searched the admin for: an id's length of
# URL-safe characters standing on their own. A percent-escape just before it is a boundary
# too (`q%3D<id>`), though its hex digits are URL-safe characters.
_AFTER_ESCAPE = "|".join(rf"(?<=%{'25' * depth}[0-9A-Fa-f]{{2}})" for depth in range(3))
_SESSION_ID = re.compile(
    rf"(?:(?<![{URLSAFE}])|{_AFTER_ESCAPE})[{URLSAFE}]{{{SESSION_ID_LENGTH}}}(?![{URLSAFE}])"
)
# Search terms in URLs (the admin's ?q=, also inside ?next= and ?_changelist_filters=), up
# to the next parameter, escaped or not.
_SEARCH_QUERY = re.compile(
    rf"((?:{_char('?')}|{_char('&')}|{_char('=')})q{_char('=')})"
    rf"(?:(?!{_escaped('&')})[^&\s\"])*"
)


def redact(text: str) -> str:
    """The text with session ids and URL search terms masked where they stand, however
    deep a URL nested them; every other character stays as it was."""
    text = _SESSION_ID_IN_PATH.sub(r"\1<id>", text)
    text = _SEARCH_QUERY.sub(r"\1<redacted>", text)
    return _SESSION_ID.sub("<id>", text)


class RedactSessionIds(logging.Filter):
    """Keep session ids out of every log line (Django's "Not Found: /path", access logs, and
    the admin's search URLs), and search terms, where staff may have typed one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class HashClientAddresses(logging.Filter):
    """uvicorn's access lines with the client's keyed IP hash (as sessions store it) where
    uvicorn writes its address and port: no raw IP reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and record.args:
            address, *rest = record.args
            host = str(address).rsplit(":", 1)[0].strip("[]")  # "ip:port", "::1:port"
            record.args = (_client_hash(host), *rest)
        return True


def _client_hash(ip: str) -> str:
    try:
        # Imported here: the filter is built before Django is set up (in uvicorn's parent
        # process, and by uvicorn in a worker before it loads the app).
        from conversations.policy import ip_hash

        return ip_hash(ip)
    except Exception:  # settings not there (no access line comes before they are): hide it
        return "-"


# What could end a line or drive a terminal: C0 controls (the tab too: it can push text out
# of sight, and one record a line has no use for it), DEL, C1 controls (NEL ends a line for
# some readers), and Unicode's line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """The text with its control characters written as visible escapes (\\n, \\x1b, \\u2028)."""
    return _CONTROL.sub(lambda control: control[0].encode("unicode_escape").decode(), text)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The text format: one line a record, whatever a message or its arguments hold, so that
    nothing logged can forge a line or send a terminal escape sequence."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info:
            record.exc_text = None  # another handler's formatter may have cached it unescaped
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        """Python's traceback, its lines as Python writes them from the code; what each
        exception says (message, notes, a SyntaxError's quoted source) is one escaped line."""
        top = traceback.TracebackException(*ei, compact=True)
        pending = [top]
        while pending:
            exception = pending.pop()
            exception.format_exception_only = _one_line(exception.format_exception_only)
            related = (exception.__cause__, exception.__context__, *(exception.exceptions or ()))
            pending += [other for other in related if other is not None]
        return "".join(top.format()).removesuffix("\n")


def _one_line(format_exception_only: Callable[..., Iterator[str]]) -> Callable[..., Iterator[str]]:
    """`TracebackException.format_exception_only`, all it yields on one escaped line (it
    yields a note line by line, and the message too on newer Pythons)."""

    def escaped(**kwargs) -> Iterator[str]:
        said = "".join(format_exception_only(**kwargs)).removesuffix("\n")
        yield escape_controls(said) + "\n"

    return escaped


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


# --- Configuration --------------------------------------------------------------------------


def configure(config: dict) -> None:
    """Django's LOGGING_CONFIG: `dictConfig`, keeping uvicorn's access log off when uvicorn
    was told so (`--no-access-log`, `Config(access_log=False)`).

    uvicorn switches it off by leaving its access logger without handlers, before the app,
    and so Django, is loaded; applied as written, LOGGING would give it one again.
    """
    access = logging.getLogger("uvicorn.access")
    switched_off = not access.handlers and not access.propagate
    logging.config.dictConfig(config)
    if switched_off:
        access.handlers = []
        access.propagate = False


def uvicorn_log_config() -> dict:
    """uvicorn's `log_config` (`uvicorn.Config(log_config=...)`): settings' LOGGING, so
    that uvicorn's parent process, under `workers`, and each worker before it loads the app
    log in `LOG_FORMAT` and `LOG_LEVEL` too, access lines with the client's IP hash."""
    from django.conf import settings

    return copy.deepcopy(settings.LOGGING)


def settings_formatter() -> logging.Formatter:
    """The formatter settings' `LOG_FORMAT` names, for uvicorn's `--log-config` file
    (chatkit/uvicorn-logging.json): in uvicorn's parent process, which never loads the app."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatkit.settings")
    from django.conf import settings

    return JsonFormatter() if settings.LOG_FORMAT == "json" else TextFormatter(TEXT_FORMAT)

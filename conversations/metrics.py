"""Prometheus metrics of chat turns, correct with several worker processes.

With more than one process (`uvicorn --workers N`), set PROMETHEUS_MULTIPROC_DIR to an empty
directory the processes share, in the environment, before they start: each process then
writes its numbers there and `/metrics`, whichever process answers, adds them all up.
"""

import os
import re
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from conversations.models import Message

# Seconds; a model's first token takes from tens of milliseconds (small local models) to tens
# of seconds (a busy provider), and a whole reply up to CHATKIT_REPLY_TIMEOUT.
_TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
_DURATION_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)

TURNS = Counter(
    "chatkit_turns",
    "Chat turns ended, by assistant and how the reply ended.",
    ["assistant", "status"],
)
TURN_ERRORS = Counter("chatkit_turn_errors", "Failed replies, by error code.", ["code"])
TOKENS = Counter(
    "chatkit_tokens", "Tokens the model reported, by assistant and kind.", ["assistant", "kind"]
)
TIME_TO_FIRST_TOKEN = Histogram(
    "chatkit_time_to_first_token_seconds",
    "From asking the model to its first token.",
    ["assistant"],
    buckets=_TTFT_BUCKETS,
)
TURN_DURATION = Histogram(
    "chatkit_turn_duration_seconds",
    "From asking the model to the reply's end.",
    ["assistant"],
    buckets=_DURATION_BUCKETS,
)
BUDGET_ALERTS = Counter(
    "chatkit_budget_alerts",
    "Days an assistant's token budget reached a share (80, 100 percent), by assistant.",
    ["assistant", "percent"],
)
REFUSED = Counter(
    "chatkit_refused", "Requests the admission gate turned away, by reason.", ["reason"]
)
OPEN_STREAMS = Gauge(
    "chatkit_open_streams", "Streamed replies being sent now.", multiprocess_mode="livesum"
)


def turn_observe(reply: Message, *, assistant: str) -> None:
    """Count a turn whose reply has just been stored."""
    TURNS.labels(assistant, reply.status).inc()
    if reply.status == Message.Status.ERROR:
        TURN_ERRORS.labels(reply.error_code or "unknown").inc()
    if reply.prompt_tokens:
        TOKENS.labels(assistant, "prompt").inc(reply.prompt_tokens)
    if reply.completion_tokens:
        TOKENS.labels(assistant, "completion").inc(reply.completion_tokens)
    if reply.ttft_ms is not None:
        TIME_TO_FIRST_TOKEN.labels(assistant).observe(reply.ttft_ms / 1000)
    if reply.duration_ms is not None:
        TURN_DURATION.labels(assistant).observe(reply.duration_ms / 1000)


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """Every metric in the Prometheus text format, summed over the processes when several."""
    if _multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def forget_dead_processes() -> None:
    """Drop the open-stream counts of processes that have died (a worker that crashed
    or was restarted), so they are not added to the live ones."""
    directory = _multiprocess_dir()
    if directory is None:
        return
    for path in Path(directory).glob("gauge_live*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True

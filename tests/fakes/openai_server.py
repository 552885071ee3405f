"""A fake OpenAI-compatible Chat Completions server speaking real HTTP/1.1 on a local TCP port.

Standard library only. Use ``FakeOpenAI`` in tests (background thread) or run it from the command
line: ``python -m tests.fakes.openai_server --port 8001 --ttft 0.3 --itl 0.03``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http
import itertools
import json
import logging
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Self

__all__ = ["FAULTS", "FakeOpenAI", "Knobs", "main"]

logger = logging.getLogger(__name__)

FAULTS = (None, "status", "hang", "cut", "malformed", "drop")

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024
_TOKEN_RE = re.compile(r"\S+\s*|\s+")
_MODELS = ("gpt-4o-mini", "gpt-4o", "fake-model")

# Error "type"/"code"/message per status, mirroring what api.openai.com returns.
_ERROR_SHAPES: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request (injected by fake OpenAI server)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to perform this request."),
    404: ("invalid_request_error", None, "The requested resource does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}


@dataclasses.dataclass
class Knobs:
    """Behaviour settings of the fake server; the comment on each field says what it does."""

    ttft: float = 0.0  # seconds before the first content token (or before the JSON response)
    itl: float = 0.0  # seconds between tokens (JSON mode waits the same total generation time)
    reply: str | None = None  # fixed reply text; None means "Echo: <last user message>"
    reply_tokens: int | None = None  # if set, reply is N pieces "tok0 tok1 ..."
    fault: str | None = None  # one of FAULTS; faults only affect /v1/chat/completions
    fault_status: int = 500  # HTTP status for fault="status"
    fault_message: str | None = None  # overrides the default error message for fault="status"
    fault_count: int | None = None  # faults apply to the next K chat requests; None = until changed
    hang_after: int = 0  # fault="hang" in streaming mode: content tokens sent before hanging
    cut_after: int = 0  # fault="cut": content tokens sent before closing the socket
    malformed_after: int = 0  # fault="malformed": content tokens sent before the bad line
    malformed_continue: bool = True  # after the bad line, finish the stream (else end it bare)
    hold_after: int | None = None  # streaming: content tokens sent, then wait for release()
    usage: bool = True  # streaming: False ignores stream_options, as some servers do (no usage)


_KNOB_NAMES = frozenset(f.name for f in dataclasses.fields(Knobs))


def _check_knobs(knobs: Knobs) -> None:
    """Reject values that would make the server misbehave in confusing ways."""
    if knobs.fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}, got {knobs.fault!r}")
    if not 100 <= int(knobs.fault_status) <= 599:
        raise ValueError(f"fault_status must be an HTTP status code, got {knobs.fault_status!r}")
    if knobs.hold_after is not None and knobs.hold_after < 0:
        raise ValueError("hold_after must be >= 0")
    if knobs.ttft < 0 or knobs.itl < 0:
        raise ValueError("ttft and itl must be >= 0")


class _BadRequestError(Exception):
    """The bytes on the wire are not an HTTP request we can parse."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Connection:
    """One client socket: a pump task buffers incoming bytes so EOF is visible at any time."""

    def __init__(self, conn_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.id = conn_id
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.data_event = asyncio.Event()
        self.eof = asyncio.Event()
        self._sleeper: asyncio.Future[None] | None = None

    async def pump(self) -> None:
        """Read from the socket until EOF; the handler parses from ``buf`` instead."""
        try:
            while data := await self.reader.read(65536):
                self.buf += data
                self.data_event.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof.set()
            self.data_event.set()
            if self._sleeper is not None and not self._sleeper.done():
                self._sleeper.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Like ``asyncio.sleep`` but ends early on EOF; cheap enough to call per token."""
        loop = asyncio.get_running_loop()
        self._sleeper = future = loop.create_future()
        timer = loop.call_later(seconds, lambda: future.done() or future.set_result(None))
        try:
            await future
        finally:
            timer.cancel()
            self._sleeper = None

    async def _more(self) -> None:
        self.data_event.clear()
        await self.data_event.wait()

    async def read_until(self, sep: bytes, limit: int) -> bytes | None:
        """Return bytes up to and including ``sep``; None on EOF before it arrives."""
        start = 0
        while True:
            idx = self.buf.find(sep, start)
            if idx >= 0:
                end = idx + len(sep)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            if len(self.buf) > limit:
                raise _BadRequestError(431, "Request header fields too large")
            if self.eof.is_set():
                return None
            start = max(0, len(self.buf) - len(sep) + 1)
            await self._more()

    async def read_exactly(self, n: int) -> bytes | None:
        """Return exactly ``n`` bytes; None on EOF before they arrive."""
        while len(self.buf) < n:
            if self.eof.is_set():
                return None
            await self._more()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _split_pieces(text: str) -> list[str]:
    """Split at word boundaries keeping whitespace, so ``"".join(pieces) == text``."""
    return _TOKEN_RE.findall(text)


def _content_text(content: Any) -> str:
    """Flatten a message ``content`` (string or list of typed parts) into plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _error_payload(status: int, message: str | None = None) -> dict[str, Any]:
    """Build an OpenAI-shaped error body for ``status``."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    err_type, code, default_message = _ERROR_SHAPES.get(
        status, (default_type, None, f"Error {status} (injected by fake OpenAI server).")
    )
    return {
        "error": {
            "message": message or default_message,
            "type": err_type,
            "param": None,
            "code": code,
        }
    }


def _response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _sse_frame(data: str) -> bytes:
    """One SSE event wrapped in one HTTP chunk, so each event leaves the server on its own."""
    payload = f"data: {data}\n\n".encode()
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


_LAST_CHUNK = b"0\r\n\r\n"


class FakeOpenAI:
    """Fake OpenAI Chat Completions server; ``with FakeOpenAI() as fake:`` runs it in a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_records: int | None = None,
        **knobs: Any,
    ) -> None:
        unknown = set(knobs) - _KNOB_NAMES
        if unknown:
            raise TypeError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        self.host = host
        self.port = port
        self._defaults = Knobs(**knobs)
        _check_knobs(self._defaults)
        self._knobs = dataclasses.replace(self._defaults)
        # One Condition guards knobs and records; waiters are woken by the server thread.
        self._cond = threading.Condition()
        self._records: deque[dict[str, Any]] = deque(maxlen=max_records)
        self._total_requests = 0
        self._open_connections = 0
        self._conn_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._conn_tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 5.0) -> Self:
        """Start serving in a daemon thread and wait until the port is bound."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already running")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run_loop, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("fake OpenAI server did not start in time")
        if self._startup_error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise RuntimeError("fake OpenAI server failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and all connections (hanging ones too), then join the thread."""
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already shut down
                loop.call_soon_threadsafe(stop_event.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def serve_forever(self, on_ready: Callable[[FakeOpenAI], None] | None = None) -> None:
        """Serve in the calling thread until ``stop()``, Ctrl-C or (main thread) SIGTERM."""
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._serve(on_ready, handle_sigterm=True))

    def _run_loop(self) -> None:
        try:
            asyncio.run(self._serve(None, handle_sigterm=False))
        except BaseException as exc:  # surfaced to start() instead of dying silently
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                logger.exception("fake OpenAI server crashed")

    async def _serve(
        self, on_ready: Callable[[FakeOpenAI], None] | None, *, handle_sigterm: bool
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._released = asyncio.Event()
        if handle_sigterm and threading.current_thread() is threading.main_thread():
            # `kill` from a benchmark script should shut down as cleanly as Ctrl-C does.
            self._loop.add_signal_handler(signal.SIGTERM, self._stop_event.set)
        # A deep backlog: benchmarks open hundreds of connections at once, and dropped SYNs
        # would show up as multi-second connect stalls that have nothing to do with the app.
        server = await asyncio.start_server(
            self._handle_connection, self.host, self.port, backlog=1024
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        if on_ready is not None:
            on_ready(self)
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            # Hanging handlers never finish on their own, so cancel them to stop promptly.
            tasks = list(self._conn_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            self._loop = None

    # ----------------------------------------------------------------- public API

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to the openai SDK."""
        return f"{self.url}/v1"

    @property
    def knobs(self) -> Knobs:
        """A snapshot copy of the current knobs."""
        with self._cond:
            return dataclasses.replace(self._knobs)

    def configure(self, **changes: Any) -> None:
        """Change knobs at runtime (thread-safe); applies to requests that start afterwards.

        Setting ``fault`` without ``fault_count`` makes the fault persistent until changed.
        """
        unknown = set(changes) - _KNOB_NAMES
        if unknown:
            raise TypeError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        if "fault" in changes and "fault_count" not in changes:
            changes["fault_count"] = None
        with self._cond:
            new = dataclasses.replace(self._knobs, **changes)
            _check_knobs(new)
            if new.fault_count is not None and new.fault_count <= 0:
                new.fault, new.fault_count = None, None
            self._knobs = new

    def reset(self) -> None:
        """Forget recorded requests and restore the knobs given at construction."""
        with self._cond:
            self._knobs = dataclasses.replace(self._defaults)
            self._records.clear()
            self._total_requests = 0
        self._on_loop(lambda: self._released.clear())

    def release(self) -> None:
        """Let the streams that `hold_after` holds go on (and any that reach it later)."""
        self._on_loop(lambda: self._released.set())

    def _on_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(fn)

    def clear_requests(self) -> None:
        """Forget recorded requests but keep the knobs."""
        with self._cond:
            self._records.clear()
            self._total_requests = 0

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recorded requests in arrival order (live dicts; the list itself is a copy)."""
        with self._cond:
            return list(self._records)

    @property
    def last_request(self) -> dict[str, Any] | None:
        """The most recent recorded request, or None."""
        with self._cond:
            return self._records[-1] if self._records else None

    @property
    def open_connections(self) -> int:
        """Number of client TCP connections currently open."""
        with self._cond:
            return self._open_connections

    def wait_for_requests(self, n: int, timeout: float | None = 5.0) -> bool:
        """Block until at least ``n`` requests were received since the last reset."""
        with self._cond:
            return self._cond.wait_for(lambda: self._total_requests >= n, timeout)

    def wait_for_disconnect(self, timeout: float | None = 5.0) -> bool:
        """Block until some recorded request saw its client disconnect early."""
        with self._cond:
            return self._cond.wait_for(
                lambda: any(r["disconnected"] for r in self._records), timeout
            )

    # ----------------------------------------------------------------- internals: bookkeeping

    def _take_knobs(self) -> Knobs:
        """Snapshot the knobs for one chat request and count down ``fault_count``."""
        with self._cond:
            snap = dataclasses.replace(self._knobs)
            if self._knobs.fault is not None and self._knobs.fault_count is not None:
                self._knobs.fault_count -= 1
                if self._knobs.fault_count <= 0:
                    self._knobs.fault, self._knobs.fault_count = None, None
            return snap

    def _record(self, record: dict[str, Any]) -> None:
        with self._cond:
            self._records.append(record)
            self._total_requests += 1
            self._cond.notify_all()

    def _event(self, record: dict[str, Any], label: str) -> None:
        record["events"].append((label, time.monotonic()))

    def _mark_disconnected(self, record: dict[str, Any]) -> None:
        with self._cond:
            if not record["disconnected"]:
                now = time.monotonic()
                record["disconnected"] = True
                record["closed_at"] = now
                record["events"].append(("disconnect", now))
            self._cond.notify_all()

    # ----------------------------------------------------------------- internals: I/O

    async def _write(
        self, conn: _Connection, record: dict[str, Any], data: bytes, label: str | None = None
    ) -> bool:
        """Send bytes now; False (and the request marked disconnected) if the client is gone.

        ``label`` goes on the timeline just before the bytes leave: the client may read them
        before ``write()`` returns, and tests compare both sides' clocks.
        """
        if conn.eof.is_set():
            self._mark_disconnected(record)
            return False
        entry = None
        if label is not None:
            entry = (label, time.monotonic())
            record["events"].append(entry)
        try:
            conn.writer.write(data)
            await conn.writer.drain()
        except (ConnectionError, OSError):
            if entry is not None:
                record["events"].remove(entry)  # never delivered
            self._mark_disconnected(record)
            return False
        return True

    async def _pause(self, conn: _Connection, record: dict[str, Any], seconds: float) -> bool:
        """Sleep, but wake early and return False if the client disconnects meanwhile."""
        if not conn.eof.is_set() and seconds > 0:
            await conn.sleep(seconds)
        return self._still_there(conn, record)

    def _still_there(self, conn: _Connection, record: dict[str, Any]) -> bool:
        """False, the request marked disconnected, once the client has gone."""
        if conn.eof.is_set():
            self._mark_disconnected(record)
            return False
        return True

    async def _hold(self, conn: _Connection, record: dict[str, Any]) -> bool:
        """Wait for release(); False if the client disconnects first."""
        self._event(record, "hold")
        waits = {
            asyncio.ensure_future(self._released.wait()),
            asyncio.ensure_future(conn.eof.wait()),
        }
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        return self._still_there(conn, record)

    async def _hang(self, conn: _Connection, record: dict[str, Any]) -> None:
        """Send nothing until the client goes away (or the server stops and cancels us)."""
        self._event(record, "hang")
        await conn.eof.wait()
        self._mark_disconnected(record)

    async def _send_json(
        self,
        conn: _Connection,
        record: dict[str, Any],
        status: int,
        payload: Any,
        keep_alive: bool,
        extra_headers: list[tuple[str, str]] | None = None,
        raw_body: bytes | None = None,
    ) -> bool:
        body = raw_body if raw_body is not None else _dumps(payload).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("x-request-id", f"req_{uuid.uuid4().hex}"),
            *(extra_headers or []),
        ]
        if not keep_alive:
            headers.append(("connection", "close"))
        record["status"] = status
        if not await self._write(conn, record, _response_head(status, headers) + body, "done"):
            return False
        return keep_alive

    # ----------------------------------------------------------------- internals: HTTP

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conn_tasks.add(task)
        conn = _Connection(next(self._conn_ids), reader, writer)
        pump = asyncio.create_task(conn.pump())
        with self._cond:
            self._open_connections += 1
        try:
            # Keep-alive: the SDK reuses connections, so serve requests until told to close.
            while await self._serve_one(conn):
                pass
        except asyncio.CancelledError:
            pass  # server stopping
        except Exception:
            logger.exception("fake OpenAI server: error while handling a connection")
        finally:
            pump.cancel()
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pump
            with self._cond:
                self._open_connections -= 1
            self._conn_tasks.discard(task)

    async def _read_body(self, conn: _Connection, headers: dict[str, str]) -> bytes | None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                line = await conn.read_until(b"\r\n", _MAX_HEAD_BYTES)
                if line is None:
                    return None
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadRequestError(400, "Invalid chunk size") from None
                if size == 0:
                    # Skip optional trailers up to the blank line.
                    while (trailer := await conn.read_until(b"\r\n", _MAX_HEAD_BYTES)) != b"\r\n":
                        if trailer is None:
                            return None
                    return bytes(body)
                if len(body) + size > _MAX_BODY_BYTES:
                    raise _BadRequestError(413, "Request body too large")
                chunk = await conn.read_exactly(size + 2)
                if chunk is None:
                    return None
                body += chunk[:-2]
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequestError(400, "Invalid Content-Length") from None
        if length < 0 or length > _MAX_BODY_BYTES:
            raise _BadRequestError(413, "Request body too large")
        return await conn.read_exactly(length)

    async def _serve_one(self, conn: _Connection) -> bool:
        """Read and answer one request; return True to keep the connection open."""
        record: dict[str, Any] = {
            "method": "",
            "path": "",
            "headers": {},
            "body": None,
            "stream": False,
            "status": None,
            "fault": None,
            "connection": conn.id,
            "events": [],
            "disconnected": False,
            "closed_at": None,
        }
        try:
            head = await conn.read_until(b"\r\n\r\n", _MAX_HEAD_BYTES)
            if head is None:
                return False  # client closed an idle connection
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise _BadRequestError(400, "Malformed request line")
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, sep, value = line.partition(":")
                if not sep:
                    raise _BadRequestError(400, "Malformed header line")
                headers[name.strip().lower()] = value.strip()
            if headers.get("expect", "").lower() == "100-continue":
                # curl waits for this before sending bodies over 1 KiB.
                conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            raw = await self._read_body(conn, headers)
            if raw is None:
                return False
        except _BadRequestError as exc:
            await self._send_json(
                conn, record, exc.status, _error_payload(exc.status, exc.message), False
            )
            return False

        connection_opts = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection_opts
        else:
            keep_alive = "close" not in connection_opts

        path = target.split("?", 1)[0]
        body: Any = None
        json_ok = True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, json_ok = raw.decode("utf-8", "replace"), False
        stream = isinstance(body, dict) and bool(body.get("stream"))
        record.update(method=method, path=path, headers=headers, body=body, stream=stream)
        is_chat = path == "/v1/chat/completions" and method == "POST"
        # Snapshot knobs before the record becomes visible, so a test that waits for this
        # request and then reconfigures cannot change what this request does.
        knobs = self._take_knobs() if is_chat else None
        record["fault"] = knobs.fault if knobs else None
        self._event(record, "request")
        self._record(record)
        logger.info("%s %s", method, target)

        if path == "/v1/chat/completions":
            if method != "POST":
                return await self._method_not_allowed(conn, record, method, path, keep_alive)
            if knobs is None or not json_ok or not isinstance(body, dict):
                payload = _error_payload(400, "We could not parse the JSON body of your request.")
                return await self._send_json(conn, record, 400, payload, keep_alive)
            return await self._chat(conn, record, body, knobs, keep_alive)
        if path == "/_fake/knobs":
            return await self._knobs_endpoint(conn, record, method, body, json_ok, keep_alive)
        if path == "/v1/models":
            if method != "GET":
                return await self._method_not_allowed(conn, record, method, path, keep_alive)
            models = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake-openai"}
                for m in _MODELS
            ]
            payload = {"object": "list", "data": models}
            return await self._send_json(conn, record, 200, payload, keep_alive)
        payload = _error_payload(404, f"Invalid URL ({method} {path})")
        return await self._send_json(conn, record, 404, payload, keep_alive)

    async def _knobs_endpoint(
        self,
        conn: _Connection,
        record: dict[str, Any],
        method: str,
        body: Any,
        json_ok: bool,
        keep_alive: bool,
    ) -> bool:
        """``GET /_fake/knobs`` shows the knobs, ``POST`` a JSON object changes them (as
        ``configure``), so a benchmark can change latency between scenarios without a restart."""
        if method == "POST":
            if not json_ok or not isinstance(body, dict):
                payload = _error_payload(400, "POST a JSON object of knobs.")
                return await self._send_json(conn, record, 400, payload, keep_alive)
            try:
                self.configure(**body)
            except (TypeError, ValueError) as exc:
                return await self._send_json(
                    conn, record, 400, _error_payload(400, str(exc)), keep_alive
                )
        elif method != "GET":
            return await self._method_not_allowed(conn, record, method, "/_fake/knobs", keep_alive)
        payload = dataclasses.asdict(self.knobs)
        return await self._send_json(conn, record, 200, payload, keep_alive)

    async def _method_not_allowed(
        self, conn: _Connection, record: dict[str, Any], method: str, path: str, keep_alive: bool
    ) -> bool:
        payload = _error_payload(405, f"Method {method} not allowed for {path}")
        return await self._send_json(conn, record, 405, payload, keep_alive)

    # ----------------------------------------------------------------- internals: chat

    @staticmethod
    def _reply_pieces(knobs: Knobs, body: dict[str, Any]) -> tuple[list[str], str]:
        """Deterministic reply pieces after ``max_tokens`` truncation, plus the finish reason."""
        if knobs.reply_tokens is not None:
            pieces = _split_pieces(" ".join(f"tok{i}" for i in range(knobs.reply_tokens)))
        elif knobs.reply is not None:
            pieces = _split_pieces(knobs.reply)
        else:
            messages = body.get("messages")
            last_user = ""
            if isinstance(messages, list):
                for message in reversed(messages):
                    if isinstance(message, dict) and message.get("role") == "user":
                        last_user = _content_text(message.get("content"))
                        break
            pieces = _split_pieces("Echo: " + last_user)
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and not isinstance(limit, bool) and limit < len(pieces):
            return pieces[: max(limit, 0)], "length"
        return pieces, "stop"

    @staticmethod
    def _prompt_tokens(body: dict[str, Any]) -> int:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return 0
        return sum(
            len(_content_text(m.get("content")).split()) for m in messages if isinstance(m, dict)
        )

    async def _chat(
        self,
        conn: _Connection,
        record: dict[str, Any],
        body: dict[str, Any],
        knobs: Knobs,
        keep_alive: bool,
    ) -> bool:
        pieces, finish_reason = self._reply_pieces(knobs, body)
        prompt_tokens = self._prompt_tokens(body)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        model = body.get("model") if isinstance(body.get("model"), str) else "fake-model"
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        if knobs.fault == "drop":
            self._event(record, "drop")
            return False
        if knobs.fault == "status":
            status = int(knobs.fault_status)
            extra = [("retry-after", "0")] if status == 429 else []
            payload = _error_payload(status, knobs.fault_message)
            return await self._send_json(conn, record, status, payload, keep_alive, extra)
        if record["stream"]:
            return await self._stream(
                conn,
                record,
                knobs,
                body,
                keep_alive,
                pieces,
                finish_reason,
                usage,
                model,
                completion_id,
                created,
            )

        if knobs.fault == "hang":
            await self._hang(conn, record)
            return False
        # JSON mode takes as long as streaming the same reply would.
        generation = knobs.ttft + knobs.itl * max(len(pieces) - 1, 0)
        if not await self._pause(conn, record, generation):
            return False
        if knobs.fault == "cut":
            self._event(record, "cut")
            return False
        if knobs.fault == "malformed":
            self._event(record, "malformed")
            return await self._send_json(
                conn, record, 200, None, keep_alive, raw_body=b'{"id": "chatcmpl-broken", not json'
            )
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        return await self._send_json(conn, record, 200, payload, keep_alive)

    async def _stream(
        self,
        conn: _Connection,
        record: dict[str, Any],
        knobs: Knobs,
        body: dict[str, Any],
        keep_alive: bool,
        pieces: list[str],
        finish_reason: str,
        usage: dict[str, int],
        model: str,
        completion_id: str,
        created: int,
    ) -> bool:
        """Send the reply as SSE chunks, one HTTP chunk per event, injecting stream faults."""
        options = body.get("stream_options")
        include_usage = (
            knobs.usage and isinstance(options, dict) and bool(options.get("include_usage"))
        )

        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            obj: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                obj["usage"] = None  # OpenAI only adds this key when usage was requested
            return _dumps(obj)

        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
            ("x-request-id", f"req_{uuid.uuid4().hex}"),
        ]
        if not keep_alive:
            headers.append(("connection", "close"))
        record["status"] = 200
        if not await self._write(conn, record, _response_head(200, headers), "headers"):
            return False

        n = len(pieces)
        trigger = {
            "hang": knobs.hang_after,
            "cut": knobs.cut_after,
            "malformed": knobs.malformed_after,
        }.get(knobs.fault or "")
        trigger_at = None if trigger is None else min(max(trigger, 0), n)
        role_sent = False

        async def send_role() -> bool:
            nonlocal role_sent
            role_sent = True
            role = _sse_frame(chunk({"role": "assistant", "content": ""}, None))
            return await self._write(conn, record, role, "role")

        for i in range(n + 1):
            if i == trigger_at:
                if knobs.fault == "hang":
                    await self._hang(conn, record)
                    return False
                if knobs.fault == "cut":
                    # No terminating chunk: the client sees an incomplete chunked body.
                    self._event(record, "cut")
                    return False
                self._event(record, "malformed")
                if not await self._write(conn, record, _sse_frame("{not json")):
                    return False
                if not knobs.malformed_continue:
                    if not await self._write(conn, record, _LAST_CHUNK, "done"):
                        return False
                    return keep_alive
            if i == n:
                break
            if i == knobs.hold_after and not await self._hold(conn, record):
                return False
            if not await self._pause(conn, record, knobs.ttft if i == 0 else knobs.itl):
                return False
            if not role_sent and not await send_role():
                return False
            token = _sse_frame(chunk({"content": pieces[i]}, None))
            if not await self._write(conn, record, token, "token"):
                return False

        # Empty reply: OpenAI still sends the role chunk first.
        if not role_sent and not (
            await self._pause(conn, record, knobs.ttft) and await send_role()
        ):
            return False
        tail = _sse_frame(chunk({}, finish_reason))
        if include_usage:
            usage_chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            tail += _sse_frame(_dumps(usage_chunk))
        # [DONE] and the terminating chunk go together so the client can reuse the connection.
        tail += _sse_frame("[DONE]") + _LAST_CHUNK
        if not await self._write(conn, record, tail, "done"):
            return False
        return keep_alive


# --------------------------------------------------------------------------- CLI


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server",
        description="Fake OpenAI-compatible Chat Completions server for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first token")
    parser.add_argument("--itl", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--reply", default=None, help="fixed reply (default: echo the user)")
    parser.add_argument("--reply-tokens", type=int, default=None, help="reply with N tokens")
    parser.add_argument("--fault", choices=[f for f in FAULTS if f], default=None)
    parser.add_argument("--fault-status", type=int, default=500)
    parser.add_argument("--fault-message", default=None)
    parser.add_argument("--fault-count", type=int, default=None, help="fault only N requests")
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--cut-after", type=int, default=0)
    parser.add_argument("--malformed-after", type=int, default=0)
    parser.add_argument(
        "--malformed-stop",
        action="store_true",
        help="end the stream right after the malformed line",
    )
    parser.add_argument("--max-records", type=int, default=1000, help="requests kept in memory")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: serve until Ctrl-C."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    # Each knob the command line offers, by its name (malformed_continue is said the other way).
    knobs = {name: getattr(args, name) for name in _KNOB_NAMES if hasattr(args, name)}
    knobs["malformed_continue"] = not args.malformed_stop
    fake = FakeOpenAI(args.host, args.port, max_records=args.max_records, **knobs)

    def announce(server: FakeOpenAI) -> None:
        print(f"fake OpenAI server listening on {server.base_url}", flush=True)

    try:
        fake.serve_forever(on_ready=announce)
    except OSError as exc:  # e.g. the port is taken: say so without a traceback
        print(
            f"fake OpenAI server cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

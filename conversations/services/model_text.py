"""The turn pipeline's reading side: the model's text as it comes, within the turn's deadlines
(`ModelReader`); how far the reply got (`Progress`); and the columns `turn_end` writes of it,
however the turn ends."""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from chatkit import draining
from conversations import llm
from conversations.exceptions import ServerShutdown
from conversations.models import Message


@dataclass
class Progress:
    """How far a reply got: its text, when its first token came, the model's final report."""

    started: float = field(default_factory=time.monotonic)
    parts: list[str] = field(default_factory=list)
    ttft_ms: int | None = None
    finish: llm.Finish | None = None

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)

    def ending(self, status: str | None = None, error_code: str = "") -> dict[str, Any]:
        """`turn_end`'s keyword arguments for the reply as far as it got (no status: the
        turn ended with no outcome, and `turn_end` says so)."""
        usage = {}
        if self.finish is not None:
            usage = {
                "model": self.finish.model,
                "finish_reason": self.finish.finish_reason,
                "prompt_tokens": self.finish.prompt_tokens,
                "completion_tokens": self.finish.completion_tokens,
            }
        return {
            **({"status": status} if status else {}),
            "content": "".join(self.parts),
            "ttft_ms": self.ttft_ms,
            "duration_ms": self.elapsed_ms(),
            "error_code": error_code,
            **usage,
        }


class _Ping:
    def __repr__(self) -> str:
        return "PING"


# What `ModelReader.next()` returns when the model has been silent for the ping interval.
PING = _Ping()


class ModelReader:
    """The model's reply, read on a task of its own as it comes; `next()` takes what came.

        reader = ModelReader(request, progress, ping=15)
        while (text := await reader.next()) is not None: ...   # text, or PING
        await reader.close()                                     # always

    Text that arrives while the consumer is busy (sending the last piece to the visitor) is
    joined into one piece: never waited for, so the first token goes out at once. With `ping`,
    `next()` returns PING after that many seconds without text, so a stream can keep idle
    proxies from closing it; the read goes on undisturbed.

    Deadlines, retries included: the first token must come within OPENAI_FIRST_TOKEN_TIMEOUT,
    and the reply must end within CHATKIT_REPLY_TIMEOUT, or LLMError (504); when the server
    drains (chatkit.draining), by the end of its grace period, or ServerShutdown. One timer
    per turn watches them, re-armed only when it fires early: nothing is scheduled per token.
    (The SDK's HTTP client ends a read silent for OPENAI_TIMEOUT.)
    """

    def __init__(self, request: llm.ReplyRequest, progress: Progress, *, ping: float | None = None):
        self._loop = loop = asyncio.get_running_loop()
        self._progress = progress
        self._unsent: list[str] = []
        self._error: BaseException | None = None
        self._finished = False
        self._waiter: asyncio.Future | None = None
        now = loop.time()
        self._reply_deadline = now + settings.CHATKIT_REPLY_TIMEOUT
        self._first_token_deadline = min(
            self._reply_deadline, now + settings.OPENAI_FIRST_TOKEN_TIMEOUT
        )
        self._watching = contextlib.ExitStack()
        self._watching.enter_context(draining.watching(self._on_drain))
        self._deadline_timer = loop.call_at(self._deadline(), self._on_deadline)
        self._ping = ping
        self._last_sent = now
        self._ping_timer = None if ping is None else loop.call_at(now + ping, self._on_ping)
        self._task = loop.create_task(self._read(request))
        self._task.add_done_callback(self._on_read_end)

    async def next(self) -> str | _Ping | None:
        """The text that came since the last call (waiting for some), PING, or None once the
        reply is finished. Raises LLMError or ServerShutdown, after the text that came first."""
        while True:
            if self._unsent:
                text = self._unsent[0] if len(self._unsent) == 1 else "".join(self._unsent)
                self._unsent.clear()
                self._last_sent = self._loop.time()
                return text
            if self._finished:
                if self._error is not None:
                    raise self._error
                return None
            self._waiter = self._loop.create_future()
            try:
                woken_by = await self._waiter
            finally:
                self._waiter = None
            if woken_by is PING:
                return PING

    async def close(self) -> None:
        """Stop reading (closing the upstream request at once) and wait until it is closed."""
        self._deadline_timer.cancel()
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        self._watching.close()
        if not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})

    async def _read(self, request: llm.ReplyRequest) -> None:
        progress = self._progress
        try:
            async with contextlib.aclosing(llm.stream_reply(request)) as chunks:
                async for chunk in chunks:
                    if isinstance(chunk, llm.Finish):
                        progress.finish = chunk
                        break
                    if progress.ttft_ms is None:
                        progress.ttft_ms = progress.elapsed_ms()
                    progress.parts.append(chunk.text)
                    self._unsent.append(chunk.text)
                    self._wake()
        except asyncio.CancelledError:
            if self._error is None:  # closed by its consumer, not cut off by a deadline
                raise
        except BaseException as exc:  # LLMError; or our own failure, re-raised by next()
            if self._error is None:  # a deadline's error stands
                self._error = exc

    def _on_read_end(self, task: asyncio.Task) -> None:
        # A callback, not a `finally`: it runs even for a task cancelled before it started.
        self._finished = True
        self._wake()

    def _wake(self, woken_by: object = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(woken_by)

    # --- Timers ---------------------------------------------------------------------------

    def _deadline(self) -> float:
        own = self._first_token_deadline if self._progress.ttft_ms is None else self._reply_deadline
        shutdown = draining.deadline()
        return own if shutdown is None else min(own, shutdown)

    def _on_deadline(self) -> None:
        due = self._deadline()
        if self._loop.time() < due - _EARLY:  # the first token came meanwhile: the next one
            self._deadline_timer = self._loop.call_at(due, self._on_deadline)
            return
        if self._task.done():  # it ended in time (its callback may not have run yet)
            return
        self._error = self._deadline_error()
        self._task.cancel()

    def _deadline_error(self) -> BaseException:
        shutdown = draining.deadline()
        own = self._first_token_deadline if self._progress.ttft_ms is None else self._reply_deadline
        if shutdown is not None and shutdown < own:
            return ServerShutdown()
        if self._progress.ttft_ms is None and self._first_token_deadline < self._reply_deadline:
            return llm.LLMError(
                "first_token_timeout", "The model took too long to start answering.", status=504
            )
        return llm.LLMError("reply_timeout", "The reply took too long and was cut off.", status=504)

    def _on_drain(self, shutdown: float) -> None:
        """The server started draining (called on this loop): the deadline may be earlier."""
        self._deadline_timer.cancel()
        self._deadline_timer = self._loop.call_at(self._deadline(), self._on_deadline)

    def _on_ping(self) -> None:
        due = self._last_sent + self._ping
        now = self._loop.time()
        if now < due - _EARLY:
            self._ping_timer = self._loop.call_at(due, self._on_ping)
            return
        if self._waiter is not None:  # otherwise the consumer is busy sending anyway
            self._last_sent = now
            self._wake(PING)
        self._ping_timer = self._loop.call_at(now + self._ping, self._on_ping)


# A timer may fire up to the clock's resolution early.
_EARLY = 0.001


_MODEL_CHARS = Message._meta.get_field("model").max_length
_FINISH_REASON_CHARS = Message._meta.get_field("finish_reason").max_length


def stored_values(
    reply: Message,
    *,
    status: str,
    content: str,
    model: str = "",
    finish_reason: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
    error_code: str = "",
) -> dict[str, Any]:
    """The reply's columns as `turn_end` writes them. What the upstream reports is cut to fit:
    a long model name must not fail the write."""
    return {
        "content": content,
        "status": status,
        "model": (model or reply.model)[:_MODEL_CHARS],
        "finish_reason": finish_reason[:_FINISH_REASON_CHARS],
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "ttft_ms": ttft_ms,
        "duration_ms": duration_ms,
        "error_code": error_code,
    }

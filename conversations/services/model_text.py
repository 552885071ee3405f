"""The turn pipeline's reading side: the model's text as it comes, within the turn's deadlines;
how far the reply got; and the columns `turn_end` writes of it, however the turn ends."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
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


class Deadlines:
    """Wall-clock deadlines on the model call, retries included: the first token must come
    within OPENAI_FIRST_TOKEN_TIMEOUT, and a model that keeps writing (or keeps a connection
    alive without writing) must not hold the conversation past CHATKIT_REPLY_TIMEOUT. When the
    server drains (chatkit.draining), the reply must also end by the end of its grace period."""

    def __init__(self) -> None:
        now = asyncio.get_running_loop().time()
        self.reply = now + settings.CHATKIT_REPLY_TIMEOUT
        self.first_token = min(self.reply, now + settings.OPENAI_FIRST_TOKEN_TIMEOUT)
        self._reading: asyncio.Timeout | None = None

    def drain(self, shutdown: float) -> None:
        """The server started draining (called on this loop): cut the read under way short."""
        reading = self._reading
        if reading is None or reading.expired():
            return
        when = reading.when()
        if when is None or shutdown < when:
            reading.reschedule(shutdown)

    async def next_chunk(self, chunks: AsyncIterator, *, first: bool) -> Any:
        """The next chunk, or LLMError (504) when its deadline passes first, or ServerShutdown
        when the server's grace period ends first.

        The deadline wraps this one read, never a consumer's `yield`: it cancels nothing else.
        """
        own = self.first_token if first else self.reply
        shutdown = draining.deadline()
        try:
            async with asyncio.timeout_at(min(own, shutdown or own)) as self._reading:
                return await anext(chunks)
        except TimeoutError:
            shutdown = draining.deadline()
            if shutdown is not None and shutdown < own:
                raise ServerShutdown() from None
            if first and self.first_token < self.reply:
                raise llm.LLMError(
                    "first_token_timeout", "The model took too long to start answering.", status=504
                ) from None
            raise llm.LLMError(
                "reply_timeout", "The reply took too long and was cut off.", status=504
            ) from None
        finally:
            self._reading = None


async def model_text(request: llm.ReplyRequest, progress: Progress) -> AsyncIterator[str]:
    """The reply's text, piece by piece, as the model writes it; `progress` follows along.

    Closing it closes the upstream request at once; so does ServerShutdown.
    """
    deadlines = Deadlines()
    with draining.watching(deadlines.drain):
        async with contextlib.aclosing(llm.stream_reply(request)) as chunks:
            while progress.finish is None:
                chunk = await deadlines.next_chunk(chunks, first=progress.ttft_ms is None)
                if isinstance(chunk, llm.Finish):
                    progress.finish = chunk
                    continue
                if progress.ttft_ms is None:
                    progress.ttft_ms = progress.elapsed_ms()
                progress.parts.append(chunk.text)
                yield chunk.text


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

"""The model behind every reply: an OpenAI-compatible server, or the offline demo responder.

Both speak one interface: `stream_reply()` yields `Delta`s as text arrives, then exactly one
`Finish`; any failure raises `LLMError`, which already knows its HTTP status and whether a
retry can help. Nothing here touches the database.
"""

import asyncio
import json
import logging
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import openai
from django.conf import settings

from conversations.exceptions import ChatKitError

logger = logging.getLogger(__name__)

DEMO_MODEL = "demo"


@dataclass(frozen=True)
class ReplyRequest:
    model: str
    messages: list[dict[str, str]]
    temperature: float
    max_tokens: int


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finish:
    model: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LLMError(ChatKitError):
    """The model could not produce a reply; `status` is what the API answers."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 502,
        retryable: bool = True,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def mode() -> str:
    """`live` when a model is configured, `demo` when the offline responder answers."""
    return "live" if settings.OPENAI_API_KEY else "demo"


def stream_reply(request: ReplyRequest) -> AsyncIterator[Delta | Finish]:
    """Stream one reply from the configured model (or the demo responder)."""
    if mode() == "demo":
        return _stream_demo(request)
    return _stream_live(request)


# --- Live: the official SDK against OPENAI_BASE_URL ----------------------------------------

# One client per event loop: its connection pool is bound to the loop that opened it, and a
# client used from another (closed) loop fails with "Event loop is closed".
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> (config, client)


def get_client() -> openai.AsyncOpenAI:
    """The `AsyncOpenAI` client of the running event loop, built from settings.

    Its HTTP pool holds up to OPENAI_MAX_CONNECTIONS connections: every open stream holds
    one for as long as the model writes, and the SDK's own pool stops at 1,000.
    """
    loop = asyncio.get_running_loop()
    config = (
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
        settings.OPENAI_TIMEOUT,
        settings.OPENAI_MAX_RETRIES,
        settings.OPENAI_MAX_CONNECTIONS,
    )
    cached = _clients.get(loop)
    if cached is not None and cached[0] == config:
        return cached[1]
    connections = settings.OPENAI_MAX_CONNECTIONS
    client = openai.AsyncOpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT,
        max_retries=settings.OPENAI_MAX_RETRIES,
        http_client=openai.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(
                max_connections=connections, max_keepalive_connections=connections
            ),
        ),
    )
    _clients[loop] = (config, client)
    return client


async def _stream_live(request: ReplyRequest) -> AsyncIterator[Delta | Finish]:
    # The SDK sends the request (auth, base URL, retries, its error types) and hands back the
    # unread HTTP response; the stream is parsed here. The SDK's own request transform and
    # typed chunks cost more than the rest of the relay together.
    body = {
        "model": request.model,
        "messages": request.messages,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    try:
        response = await get_client().post(
            "/chat/completions", body=body, cast_to=httpx2.Response, stream=True
        )
    except openai.APIError as exc:
        raise _translate(exc) from exc

    events = ChunkParser(request.model)
    try:
        # Read to the end of the body, past `[DONE]`, so the connection can be reused.
        async for data in response.aiter_bytes():
            text = events.feed(data)
            if text:
                yield Delta(text)
    except LLMError:
        if events.unsent:  # the text that came before the bad event is kept
            yield Delta(events.unsent)
        raise
    except httpx2.TimeoutException as exc:  # silent for OPENAI_TIMEOUT
        logger.warning("model stream stalled: %r", exc)
        raise LLMError("upstream_timeout", "The model did not answer in time.", status=504) from exc
    except Exception as exc:
        # The boundary with the network, once the reply has begun: a cut connection, a body
        # that ends mid-chunk.
        logger.warning("model stream failed: %r", exc)
        raise LLMError(
            "upstream_stream_failed", "The connection to the model broke off mid-reply."
        ) from exc
    finally:
        # Closing early (the visitor left, an error) closes the upstream request, so no
        # tokens are paid for nobody.
        await response.aclose()
    text = events.end()  # a body that ended without the blank line after its last event
    if text:
        yield Delta(text)
    yield events.finish()


class ChunkParser:
    """Chat Completions chunks, as Server-Sent Events arrive in pieces of any size.

    `feed()` takes bytes as they come and returns the text of every complete event among
    them, joined: a burst of tokens read at once is relayed as one. `finish()` reports how
    the reply ended. An event that is not a JSON object, or that reports an error, raises
    LLMError (`upstream_stream_failed`).
    """

    def __init__(self, model: str):
        self.model = model
        self.finish_reason: str | None = None
        self.usage: dict = {}
        self.done = False  # `data: [DONE]` came
        self._tail = b""  # an incomplete line
        self._data: list[bytes] = []  # the data lines of the event being read
        self.unsent = ""  # when feed() raised: the text of the events before the bad one

    def feed(self, data: bytes) -> str:
        lines = (self._tail + data if self._tail else data).split(b"\n")
        self._tail = lines.pop()
        texts: list[str] = []
        try:
            for line in lines:
                if line[-1:] == b"\r":
                    line = line[:-1]
                if not line:  # a blank line ends an event
                    if self._data:
                        self._event(b"\n".join(self._data), texts)
                        self._data.clear()
                elif line[:5] == b"data:":
                    self._data.append(line[6:] if line[5:6] == b" " else line[5:])
                # Comments (`: keep-alive`) and the event, id and retry fields carry no text.
        except LLMError:
            self.unsent = "".join(texts)
            raise
        return "".join(texts)

    def _event(self, data: bytes, texts: list[str]) -> None:
        if self.done:
            return
        if data == b"[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise LLMError("upstream_stream_failed", "The model sent something that is not JSON.")
        if chunk.get("error"):
            logger.warning("the model reported an error mid-reply: %.500r", chunk["error"])
            raise LLMError("upstream_stream_failed", "The model failed mid-reply.")
        model = chunk.get("model")
        if model and isinstance(model, str):
            self.model = model
        usage = chunk.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if delta and isinstance(delta, dict):
                content = delta.get("content")
                if content and isinstance(content, str):
                    texts.append(content)
            reason = choice.get("finish_reason")
            if reason and isinstance(reason, str):
                self.finish_reason = reason

    def end(self) -> str:
        """The text of an event the body ended in, without its blank line."""
        return self.feed(b"\n\n") if self._tail or self._data else ""

    def finish(self) -> Finish:
        if self.finish_reason is None:
            raise LLMError("upstream_incomplete", "The model's reply ended before it was finished.")
        return Finish(
            model=self.model,
            finish_reason=self.finish_reason,
            prompt_tokens=_count(self.usage.get("prompt_tokens")),
            completion_tokens=_count(self.usage.get("completion_tokens")),
        )


def _count(value: object) -> int | None:
    """A token count as reported, if it is one."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _translate(exc: openai.APIError) -> LLMError:
    """Map an SDK error to what the visitor is told; the upstream's own text is only logged."""
    logger.warning("model request failed: %r", exc)
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("upstream_timeout", "The model did not answer in time.", status=504)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("upstream_unreachable", "The model server could not be reached.")
    if isinstance(exc, openai.RateLimitError):
        return LLMError(
            "upstream_rate_limited",
            "The model provider is limiting requests; try again shortly.",
            status=503,
            retry_after=_retry_after(exc.response.headers.get("retry-after")),
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMError("upstream_error", f"The model server failed (HTTP {exc.status_code}).")
        return LLMError(
            "upstream_rejected",
            f"The model server rejected the request (HTTP {exc.status_code}).",
            retryable=False,
        )
    return LLMError("upstream_error", "The model server answered with something unexpected.")


def _retry_after(header: str | None) -> int:
    """Seconds to tell the visitor to wait: the provider's own hint, within reason."""
    try:
        seconds = int(float(header or ""))
    except (ValueError, OverflowError):  # not a number, or "inf"
        seconds = 5
    return min(max(seconds, 1), 60)


# --- Demo: no model configured -------------------------------------------------------------

_WORDS = re.compile(r"\S+\s*")


def demo_reply_text(question: str) -> str:
    """The demo responder's answer: says plainly that it is not a model."""
    quoted = question if len(question) <= 200 else question[:199] + "…"
    return (
        "[Demo mode] No language model is connected, so this canned reply comes from "
        f'ChatKit itself. You wrote: "{quoted}". To get real answers, set OPENAI_API_KEY '
        "(and OPENAI_BASE_URL for a local server such as Ollama or vLLM) and restart."
    )


async def _stream_demo(request: ReplyRequest) -> AsyncIterator[Delta | Finish]:
    question = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
    words = _WORDS.findall(demo_reply_text(question))
    for word in words[: request.max_tokens]:
        # Pacing, so the demo shows what streaming looks like.
        await asyncio.sleep(settings.CHATKIT_DEMO_DELAY)
        yield Delta(word)
    finish_reason = "length" if len(words) > request.max_tokens else "stop"
    yield Finish(model=DEMO_MODEL, finish_reason=finish_reason)

"""The model behind every reply: an OpenAI-compatible server, or the offline demo responder.

Both speak one interface: `stream_reply()` yields `Delta`s as text arrives, then exactly one
`Finish`; any failure raises `LLMError`, which already knows its HTTP status and whether a
retry can help. Nothing here touches the database.
"""

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

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
    """The `AsyncOpenAI` client of the running event loop, built from settings."""
    loop = asyncio.get_running_loop()
    config = (
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
        settings.OPENAI_TIMEOUT,
        settings.OPENAI_MAX_RETRIES,
    )
    cached = _clients.get(loop)
    if cached is not None and cached[0] == config:
        return cached[1]
    client = openai.AsyncOpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT,
        max_retries=settings.OPENAI_MAX_RETRIES,
    )
    _clients[loop] = (config, client)
    return client


async def _stream_live(request: ReplyRequest) -> AsyncIterator[Delta | Finish]:
    try:
        stream = await get_client().chat.completions.create(
            model=request.model,
            messages=request.messages,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
    except openai.APIError as exc:
        raise _translate(exc) from exc

    model, finish_reason, usage = request.model, None, None
    try:
        async for chunk in stream:
            model = chunk.model or model
            usage = chunk.usage or usage
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    yield Delta(choice.delta.content)
                finish_reason = choice.finish_reason or finish_reason
    except openai.APITimeoutError as exc:  # the stream stalled
        raise _translate(exc) from exc
    except Exception as exc:
        # The boundary with the network, once the reply has begun: a cut connection or a
        # chunk that is not JSON surfaces as a connection or decoding error from the SDK.
        logger.warning("model stream failed: %r", exc)
        raise LLMError(
            "upstream_stream_failed", "The connection to the model broke off mid-reply."
        ) from exc
    finally:
        # Closing early (the visitor left, an error) cancels the upstream request, so no
        # tokens are paid for nobody.
        await stream.close()

    if finish_reason is None:
        raise LLMError("upstream_incomplete", "The model's reply ended before it was finished.")
    yield Finish(
        model=model,
        finish_reason=finish_reason,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
    )


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

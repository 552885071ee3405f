"""The load generator's clients, asyncio + aiohttp: ChatKit's v1 API (JSON and SSE), the seed
API (which the Node peer speaks too), the fake model called directly, and the closed-loop and
open-loop drivers. Each simulated visitor comes through one trusted proxy with an
X-Forwarded-For of its own, so per-IP limits count per visitor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp

SEED_MESSAGE = "Where is my order A-345950? It was due on Monday."


class Failure(Exception):
    """A turn that did not succeed, by kind (http_429, error event code, timeout...)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, Failure):
        return exc.kind
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return type(exc).__name__


def headers(visitor: int) -> dict[str, str]:
    """What one trusted proxy in front of ChatKit adds for visitor number `visitor`."""
    ip = f"10.{(visitor >> 16) & 255}.{(visitor >> 8) & 255}.{visitor & 255}"
    return {"X-Forwarded-For": ip, "X-Forwarded-Proto": "https"}


def client() -> aiohttp.ClientSession:
    """One client for a whole scenario: unlimited keep-alive pool, no overall timeout (streams
    last as long as the scenario wants)."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=2**18)


async def _json(response: aiohttp.ClientResponse, expect: int) -> dict:
    if response.status != expect:
        await response.read()
        raise Failure(f"http_{response.status}")
    return await response.json(content_type=None)


# --- ChatKit v1 and seed ------------------------------------------------------------------


async def new_session(http: aiohttp.ClientSession, base: str, visitor: int) -> str:
    async with http.post(f"{base}/api/v1/sessions", json={}, headers=headers(visitor)) as r:
        return (await _json(r, 201))["id"]


async def no_session(http: aiohttp.ClientSession, base: str, visitor: int) -> str:
    return ""


async def health(http: aiohttp.ClientSession, base: str, session: str, visitor: int) -> None:
    async with http.get(f"{base}/health", headers=headers(visitor)) as r:
        await _json(r, 200)


async def v1_turn(http: aiohttp.ClientSession, base: str, session: str, visitor: int) -> None:
    url = f"{base}/api/v1/sessions/{session}/messages"
    body = {"content": SEED_MESSAGE, "stream": False}
    async with http.post(url, json=body, headers=headers(visitor)) as r:
        await _json(r, 201)


async def seed_session(http: aiohttp.ClientSession, base: str, visitor: int) -> str:
    async with http.post(f"{base}/api/create-session", json={}, headers=headers(visitor)) as r:
        return (await _json(r, 200))["sessionId"]


async def seed_chat(http: aiohttp.ClientSession, base: str, session: str, visitor: int) -> None:
    body = {"sessionId": session, "message": SEED_MESSAGE}
    async with http.post(f"{base}/api/chat", json=body, headers=headers(visitor)) as r:
        await _json(r, 200)


@dataclasses.dataclass
class Stream:
    """What one streamed reply looked like from the client: seconds from the request to the
    first delta, to the end, how many deltas, and how it failed if it did."""

    ttft: float | None = None
    duration: float | None = None
    deltas: int = 0
    error: str | None = None
    done: bool = False
    opened: bool = False  # the response started (200)


class Tally:
    """Deltas received by every stream of a scenario, read at the edges of a window."""

    deltas = 0


async def _events(response: aiohttp.ClientResponse):
    """Yield each SSE event's raw bytes (without the blank line ending it)."""
    buffer = b""
    async for data in response.content.iter_any():
        buffer += data
        while (end := buffer.find(b"\n\n")) >= 0:
            yield buffer[:end]
            buffer = buffer[end + 2 :]


async def stream_turn(
    http: aiohttp.ClientSession,
    base: str,
    session: str,
    visitor: int,
    *,
    tally: Tally | None = None,
    stream: Stream | None = None,
) -> Stream:
    """POST a v1 message with stream: true and read the SSE reply to its done or error."""
    result = stream or Stream()
    url = f"{base}/api/v1/sessions/{session}/messages"
    started = time.perf_counter()
    try:
        body = {"content": SEED_MESSAGE, "stream": True}
        async with http.post(url, json=body, headers=headers(visitor)) as response:
            if response.status != 200:
                await response.read()
                raise Failure(f"http_{response.status}")
            result.opened = True
            async for event in _events(response):
                if event.startswith(b"event: delta"):
                    if result.ttft is None:
                        result.ttft = time.perf_counter() - started
                    result.deltas += 1
                    if tally is not None:
                        tally.deltas += 1
                elif event.startswith(b"event: done"):
                    result.done = True
                    break
                elif event.startswith(b"event: error"):
                    data = event.split(b"\ndata: ", 1)[1]
                    raise Failure(json.loads(data).get("code", "error_event"))
            if not result.done:
                raise Failure("ended_without_done")
    except Exception as exc:  # recorded by kind, never raised: a scenario counts them
        result.error = failure_kind(exc)
    result.duration = time.perf_counter() - started
    return result


# --- The fake model, directly -------------------------------------------------------------

DIRECT_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": SEED_MESSAGE},
]


async def direct_stream(
    http: aiohttp.ClientSession, fake: str, *, tally: Tally | None = None
) -> Stream:
    """The same streamed reply, asked of the fake model itself: the baseline."""
    result = Stream()
    body = {
        "model": "gpt-4o-mini",
        "messages": DIRECT_MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 4000,
    }
    started = time.perf_counter()
    try:
        async with http.post(f"{fake}/chat/completions", json=body) as response:
            if response.status != 200:
                raise Failure(f"http_{response.status}")
            async for event in _events(response):
                if event == b"data: [DONE]":
                    result.done = True
                    break
                if b'"content":' not in event or b'"content":""' in event:
                    continue
                if result.ttft is None:
                    result.ttft = time.perf_counter() - started
                result.deltas += 1
                if tally is not None:
                    tally.deltas += 1
            if not result.done:
                raise Failure("ended_without_done")
    except Exception as exc:
        result.error = failure_kind(exc)
    result.duration = time.perf_counter() - started
    return result


async def direct_json(http: aiohttp.ClientSession, fake: str, session: str, visitor: int) -> None:
    body = {"model": "gpt-4o-mini", "messages": DIRECT_MESSAGES, "max_tokens": 500}
    async with http.post(f"{fake}/chat/completions", json=body) as r:
        await _json(r, 200)


# --- Drivers ------------------------------------------------------------------------------


@dataclasses.dataclass
class ClosedLoop:
    latencies: list[float]
    errors: Counter
    seconds: float

    @property
    def turns_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def closed_loop(
    visitors: int,
    setup: Callable[[int], Awaitable[str]],
    turn: Callable[[str, int], Awaitable[None]],
    *,
    warmup: float,
    duration: float,
    first_visitor: int = 0,
) -> ClosedLoop:
    """`visitors` visitors, each with a session of its own (`setup`), sending a turn as soon
    as the last one is answered. Turns that start after the warm-up and end within the
    duration are measured."""
    ids = range(first_visitor, first_visitor + visitors)
    sessions = await asyncio.gather(*(setup(v) for v in ids))
    latencies: list[float] = []
    errors: Counter = Counter()
    begin = time.perf_counter() + warmup
    end = begin + duration

    async def visitor(v: int, session: str) -> None:
        while (started := time.perf_counter()) < end:
            try:
                await turn(session, v)
            except Exception as exc:
                if started >= begin:
                    errors[failure_kind(exc)] += 1
                continue
            finished = time.perf_counter()
            if started >= begin and finished <= end:
                latencies.append(finished - started)

    await asyncio.gather(*(visitor(v, s) for v, s in zip(ids, sessions, strict=True)))
    return ClosedLoop(latencies, errors, duration)


async def open_loop(rate: float, count: int, arrival: Callable[[int], Awaitable]) -> list:
    """`count` arrivals at `rate` a second, on schedule whatever the answers take; returns
    what each arrival returned, in order."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i in range(count):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the arrival schedule itself
        tasks.append(asyncio.create_task(arrival(i)))
    return await asyncio.gather(*tasks)

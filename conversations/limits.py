"""Rate limits: atomic counters in the shared cache, and leases on replies being written.

    await limits.hit(limits.MESSAGES_PER_IP, visitor.ip_hash)   # RateLimited when over
    lease = await limits.lease_take(visitor.ip_hash)             # RateLimited when all taken
    await lease.release()
    # Several counts and a lease in one round trip (a chat turn's admission):
    lease = await limits.admit([(limits.MESSAGES_PER_IP, ip), ...], lease_for=ip)

With `REDIS_URL` the counters live in Redis, shared by every process, and are spoken to with
redis-py's asyncio client: no thread per check. Without it they live in this process's
memory (development, one process: production with several workers refuses to start without
Redis). Counts are fixed windows, an atomic INCR each, so a burst of N parallel requests
against a limit of 10 lets exactly 10 through. A lease expires by itself (a killed process
cannot hold an IP's replies forever).

When Redis is down or slow (CHATKIT_CACHE_TIMEOUT), limits fail open: the visitor is served,
and one warning a minute says the limits are not counting.
"""

import asyncio
import logging
import math
import secrets
import threading
import time
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from conversations.exceptions import RateLimited
from conversations.validators import parse_rate

logger = logging.getLogger(__name__)

KEY_PREFIX = "chatkit:rl:"
# A reply ends within CHATKIT_REPLY_TIMEOUT; its lease outlives that only if its process died.
LEASE_MARGIN_SECONDS = 60
WARNING_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class Limit:
    """A named rate limit whose rate is a setting (read at each check: tests override it)."""

    name: str
    setting: str

    def rate(self) -> tuple[int, int]:
        return parse_rate(getattr(settings, self.setting))


SESSIONS_PER_IP = Limit("sessions-ip", "CHATKIT_RATELIMIT_SESSIONS_PER_IP")
MESSAGES_PER_SESSION = Limit("messages-session", "CHATKIT_RATELIMIT_MESSAGES_PER_SESSION")
MESSAGES_PER_IP = Limit("messages-ip", "CHATKIT_RATELIMIT_MESSAGES_PER_IP")
STREAMS = "streams-ip"


async def hit(limit: Limit, ident: str) -> None:
    """Count one request of `ident` (a keyed hash) against `limit`; RateLimited when over."""
    if not settings.CHATKIT_RATELIMIT_ENABLED or not ident:
        return
    allowed, window = limit.rate()
    now = time.time()
    index = int(now // window)
    key = f"{KEY_PREFIX}{limit.name}:{window}:{index}:{ident}"
    try:
        count = await _store().incr(key, ttl=window)
    except _UNAVAILABLE as exc:
        _warn_unavailable(exc)
        return
    if count > allowed:
        raise RateLimited(retry_after=max(1, math.ceil((index + 1) * window - now)))


@dataclass
class Lease:
    """One reply being written, for the concurrent-replies limit; `release()` is idempotent."""

    key: str
    member: str
    released: bool = False

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            await _store().lease_drop(self.key, self.member)
        except _UNAVAILABLE as exc:
            _warn_unavailable(exc)  # it expires on its own


NO_LEASE = Lease(key="", member="", released=True)


async def lease_take(ident: str) -> Lease:
    """Take one of `ident`'s CHATKIT_RATELIMIT_STREAMS_PER_IP leases; RateLimited when none
    is free (Retry-After: a reply usually ends within a few seconds)."""
    if not settings.CHATKIT_RATELIMIT_ENABLED or not ident:
        return NO_LEASE
    key = f"{KEY_PREFIX}{STREAMS}:{ident}"
    member = secrets.token_hex(8)
    ttl = settings.CHATKIT_REPLY_TIMEOUT + LEASE_MARGIN_SECONDS
    try:
        taken = await _store().lease_take(
            key, member, limit=settings.CHATKIT_RATELIMIT_STREAMS_PER_IP, ttl=ttl
        )
    except _UNAVAILABLE as exc:
        _warn_unavailable(exc)
        return NO_LEASE
    if not taken:
        raise _no_lease_free()
    return Lease(key=key, member=member)


async def admit(hits: list[tuple[Limit, str]], *, lease_for: str) -> Lease:
    """`hit` each (limit, ident) in order, then `lease_take(lease_for)`: in one round trip to
    the cache, and atomically. RateLimited for the first that refuses; what comes after it is
    neither counted nor taken."""
    if not settings.CHATKIT_RATELIMIT_ENABLED:
        return NO_LEASE
    now = time.time()
    counters = []
    for limit, ident in hits:
        if ident:
            allowed, window = limit.rate()
            index = int(now // window)
            key = f"{KEY_PREFIX}{limit.name}:{window}:{index}:{ident}"
            retry_after = max(1, math.ceil((index + 1) * window - now))
            counters.append(_Counter(key=key, ttl=window, allowed=allowed, retry_after=retry_after))
    lease = None
    if lease_for:
        lease = _LeaseAsk(
            key=f"{KEY_PREFIX}{STREAMS}:{lease_for}",
            member=secrets.token_hex(8),
            limit=settings.CHATKIT_RATELIMIT_STREAMS_PER_IP,
            ttl=settings.CHATKIT_REPLY_TIMEOUT + LEASE_MARGIN_SECONDS,
        )
    try:
        refused = await _store().admit(counters, lease, now=now)
    except _UNAVAILABLE as exc:
        _warn_unavailable(exc)
        return NO_LEASE
    if refused is None:
        return NO_LEASE if lease is None else Lease(key=lease.key, member=lease.member)
    if refused < len(counters):
        raise RateLimited(retry_after=counters[refused].retry_after)
    raise _no_lease_free()


def _no_lease_free() -> RateLimited:
    return RateLimited(
        retry_after=5,
        message="Too many replies are being written for you at once; wait for one to end.",
    )


@dataclass(frozen=True)
class _Counter:
    key: str
    ttl: int
    allowed: int
    retry_after: int


@dataclass(frozen=True)
class _LeaseAsk:
    key: str
    member: str
    limit: int
    ttl: float


# --- Where counters live -------------------------------------------------------------------

_UNAVAILABLE = (RedisError, OSError, TimeoutError)
_last_warning = 0.0


def _warn_unavailable(exc: BaseException) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARNING_INTERVAL_SECONDS:
        _last_warning = now
        logger.warning("rate limits are not counting (the cache does not answer): %r", exc)


class _RedisStore:
    # Leases: a sorted set per IP, members scored by their expiry. Taking one drops the
    # expired ones and adds a member only while fewer than the limit remain, in one step.
    _TAKE = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    return 1
    """

    # Admission: count each counter (KEYS[1..n]) in order, stopping at the first over its
    # limit, then take a lease (KEYS[n+1]) as _TAKE does. Returns 0 when all passed, else the
    # 1-based position of the one that refused.
    _ADMIT = """
    local n = tonumber(ARGV[1])
    for i = 1, n do
      redis.call('SET', KEYS[i], 0, 'EX', ARGV[2 * i], 'NX')
      if redis.call('INCR', KEYS[i]) > tonumber(ARGV[2 * i + 1]) then return i end
    end
    if #KEYS > n then
      local at = 2 * n + 2
      local lease = KEYS[n + 1]
      redis.call('ZREMRANGEBYSCORE', lease, '-inf', ARGV[at])
      if redis.call('ZCARD', lease) >= tonumber(ARGV[at + 1]) then return n + 1 end
      redis.call('ZADD', lease, ARGV[at + 2], ARGV[at + 3])
      redis.call('EXPIRE', lease, ARGV[at + 4])
    end
    return 0
    """

    def __init__(self, url: str, timeout: float):
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        self.take_script = self.client.register_script(self._TAKE)
        self.admit_script = self.client.register_script(self._ADMIT)

    async def admit(
        self, counters: list["_Counter"], lease: "_LeaseAsk | None", *, now: float
    ) -> int | None:
        keys = [counter.key for counter in counters]
        args: list = [len(counters)]
        for counter in counters:
            args += [counter.ttl, counter.allowed]
        if lease is not None:
            keys.append(lease.key)
            args += [now, lease.limit, now + lease.ttl, lease.member, math.ceil(lease.ttl)]
        refused = int(await self.admit_script(keys=keys, args=args))
        return None if refused == 0 else refused - 1

    async def incr(self, key: str, *, ttl: int) -> int:
        # One MULTI: the window's key is made with its expiry if new, then counted (any
        # Redis version; EXPIRE's NX flag would need 7).
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=ttl, nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        return int(count)

    async def lease_take(self, key: str, member: str, *, limit: int, ttl: float) -> bool:
        now = time.time()
        args = [now, limit, now + ttl, member, math.ceil(ttl)]
        return bool(await self.take_script(keys=[key], args=args))

    async def lease_drop(self, key: str, member: str) -> None:
        await self.client.zrem(key, member)


class _LocalStore:
    """The same in this process's memory, for development and single-process servers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}
        self.leases: dict[str, dict[str, float]] = {}

    async def incr(self, key: str, *, ttl: int) -> int:
        with self.lock:
            return self._incr(key, ttl=ttl, now=time.time())

    def _incr(self, key: str, *, ttl: int, now: float) -> int:
        if len(self.counts) > 10_000:
            self.counts = {k: v for k, v in self.counts.items() if v[1] > now}
        count, expires = self.counts.get(key, (0, now + ttl))
        if expires <= now:
            count, expires = 0, now + ttl
        self.counts[key] = (count + 1, expires)
        return count + 1

    async def admit(
        self, counters: list["_Counter"], lease: "_LeaseAsk | None", *, now: float
    ) -> int | None:
        with self.lock:
            for position, counter in enumerate(counters):
                if self._incr(counter.key, ttl=counter.ttl, now=now) > counter.allowed:
                    return position
            if lease is not None and not self._take(
                lease.key, lease.member, limit=lease.limit, ttl=lease.ttl, now=now
            ):
                return len(counters)
        return None

    async def lease_take(self, key: str, member: str, *, limit: int, ttl: float) -> bool:
        with self.lock:
            return self._take(key, member, limit=limit, ttl=ttl, now=time.time())

    def _take(self, key: str, member: str, *, limit: int, ttl: float, now: float) -> bool:
        held = {m: e for m, e in self.leases.get(key, {}).items() if e > now}
        if len(held) >= limit:
            self.leases[key] = held
            return False
        held[member] = now + ttl
        self.leases[key] = held
        return True

    async def lease_drop(self, key: str, member: str) -> None:
        with self.lock:
            held = self.leases.get(key, {})
            held.pop(member, None)
            if not held:
                self.leases.pop(key, None)


_local = _LocalStore()
# One Redis client per event loop: its connections are bound to the loop that opened them.
_redis_stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _store() -> _RedisStore | _LocalStore:
    url = settings.REDIS_URL
    if not url:
        return _local
    loop = asyncio.get_running_loop()
    config = (url, settings.CHATKIT_CACHE_TIMEOUT)
    cached = _redis_stores.get(loop)
    if cached is None or cached[0] != config:
        cached = (config, _RedisStore(url, settings.CHATKIT_CACHE_TIMEOUT))
        _redis_stores[loop] = cached
    return cached[1]


def local_reset() -> None:
    """Forget every count kept in this process (tests; a Redis store is left alone)."""
    global _local
    _local = _LocalStore()

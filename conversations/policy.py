"""The admission gate: who may start a conversation or a turn, from where, and how often.

Every entry point passes through it, in this order, before anything is stored:

    visitor = Visitor.of(request)                         # once per request
    await session_admit(visitor)      # starting a conversation; then, with its assistant:
    session_origin_check(visitor, assistant)
    admission = await turn_admit(visitor, public_id=...)               # a chat turn: limits
    ... then, in the turn's opening database step (services.turns), with the session it
    looks up: turn_origin_check(visitor, session.assistant), and budget_reserve(...)

With the assistant known (a conversation's, or the one being started with), the gate also
reads the visitor's identity token (conversations.identity): `visitor_identity` for a new
conversation, `session_owner_check` for an existing one, which only its owner reaches. A
conversation's lookup already matches on the `sub` the token claims (anonymous ones, or that
visitor's), so the check costs no query; the signature is verified once the assistant, whose
secret it needs, is known.

It raises typed errors the API turns into statuses: OriginNotAllowed (403),
SimpleRequestRefused (415), SessionNotFound (404), TokenInvalid, TokenExpired and
TokenRequired (401), RateLimited and BudgetExhausted (429, with Retry-After). Counters are
keyed by keyed hashes of the client IP and of the session id, never the IP or the id (the
visitor's credential) themselves.
"""

import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from conversations import identity, limits, metrics, selectors
from conversations.exceptions import (
    IdentityRefused,
    OriginNotAllowed,
    Refused,
    SessionNotFound,
    SimpleRequestRefused,
    TokenRequired,
)
from conversations.models import Assistant, Session

# Body types a page on any site may POST cross-site without a CORS preflight.
SIMPLE_CONTENT_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For through trusted proxies only.

    Each trusted proxy appends the address it saw, so with N of them the client is the N-th
    entry from the right; anything further left is what the client itself claimed.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.CHATKIT_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote
    candidate = forwarded[-proxies]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return remote
    return candidate


def ip_hash(ip: str) -> str:
    """A keyed hash of a client IP (keyed by SECRET_KEY): countable, not reversible.

    An IPv6 client is counted by its /64 network: one subscriber gets a whole /64, and could
    otherwise take a new address for every request.
    """
    if not ip:  # a Unix socket with no proxy header: every such client shares one count
        ip = "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        address = None
    if address is not None and address.version == 6 and address.ipv4_mapped is None:
        ip = str(ipaddress.ip_network(f"{address}/64", strict=False))
    elif address is not None and address.version == 6:
        ip = str(address.ipv4_mapped)
    return salted_hmac("chatkit.client-ip", ip, algorithm="sha256").hexdigest()


def session_hash(public_id: str) -> str:
    """A keyed hash of a session's public id, to count its turns by: the id is the visitor's
    credential, and stays out of the cache's keys."""
    return salted_hmac("chatkit.session-id", public_id, algorithm="sha256").hexdigest()


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


@dataclass(frozen=True)
class Visitor:
    """What the gate knows of the client behind a request."""

    origin: str  # the `Origin` header, normalised; empty for servers and curl
    own_host: str  # the chat host's own, host[:port] (the demo page, the admin's "try it")
    ip: str
    ip_hash: str
    user_agent: str = ""
    simple_body: bool = False  # text/plain or a form: what any site may send unasked
    token: str = ""  # the identity token (`Authorization: Bearer`), not verified yet
    claimed_sub: str = ""  # the `sub` it claims, to look conversations up by

    @classmethod
    def of(cls, request: HttpRequest) -> "Visitor":
        ip = client_ip(request)
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        token = identity.bearer_token(request.headers.get("Authorization", ""))
        return cls(
            origin=_origin(request.headers.get("Origin", "")),
            own_host=request.get_host().lower(),
            ip=ip,
            ip_hash=ip_hash(ip),
            user_agent=request.headers.get("User-Agent", ""),
            simple_body=content_type in SIMPLE_CONTENT_TYPES,
            token=token,
            claimed_sub=identity.claimed_sub(token),
        )


def origin_allowed(visitor: Visitor, assistant: Assistant) -> bool:
    """May a page on the visitor's origin use this assistant?

    CORS_ALLOWED_ORIGINS bounds which sites may embed the widget at all, server-side too
    (CORS only keeps a browser from reading an answer, not the request from being made); an
    assistant's own list narrows it. The chat host's own pages may always; requests without
    an `Origin` (servers, curl) are not from a page and are limited like any other.
    """
    origin = visitor.origin
    # The host alone: behind a TLS proxy the request may look plain HTTP to us.
    if not origin or urlsplit(origin).netloc == visitor.own_host:
        return True
    own = {_origin(o) for o in assistant.allowed_origins or [] if isinstance(o, str)}
    if own and origin not in own:
        return False
    if settings.CORS_ALLOW_ALL_ORIGINS:
        return True
    return origin in {_origin(o) for o in settings.CORS_ALLOWED_ORIGINS}


def origin_check(visitor: Visitor, assistant: Assistant) -> None:
    if not origin_allowed(visitor, assistant):
        raise OriginNotAllowed()


def visitor_identity(visitor: Visitor, assistant: Assistant) -> identity.Identity | None:
    """Who the visitor is for this assistant: the identity their token proves, or None for an
    anonymous visitor (and for every visitor of an assistant whose identity mode is off: the
    header is ignored there). Raises TokenRequired, TokenInvalid, TokenExpired (401)."""
    with _refusals_counted():
        mode = assistant.identity_mode
        if mode == Assistant.IdentityMode.OFF:
            return None
        if not visitor.token:
            if mode == Assistant.IdentityMode.REQUIRED:
                raise TokenRequired()
            return None
        return identity.token_verify(visitor.token, assistant=assistant)


def session_owner_check(visitor: Visitor, session: Session) -> identity.Identity | None:
    """May this visitor use this conversation? An anonymous one, anybody holding its id (but
    in `required` mode, only signed-in visitors); a signed-in visitor's, only they, on any
    device: anyone else is told it does not exist (404), as for an unknown id. Returns the
    visitor's identity (None: anonymous)."""
    who = visitor_identity(visitor, session.assistant)
    if session.visitor_sub and (who is None or who.sub != session.visitor_sub):
        raise SessionNotFound()
    return who


def session_visitor_sub(visitor: Visitor | None) -> str | None:
    """What a conversation's lookup matches `visitor_sub` on: "" (anonymous conversations
    only) or the `sub` the token claims (those and that visitor's; the claim is verified with
    the conversation's assistant: `session_owner_check`). None, for a trusted caller: any."""
    return None if visitor is None else visitor.claimed_sub


def session_reachable(visitor: Visitor, public_id: str) -> Session:
    """The session a visitor names, if their page may use its assistant and it is theirs to
    use (reads, deletion, feedback: no limit is counted)."""
    session = selectors.session_get(public_id=public_id, visitor_sub=visitor.claimed_sub)
    origin_check(visitor, session.assistant)
    session_owner_check(visitor, session)
    return session


async def session_admit(visitor: Visitor) -> None:
    """May this visitor start a conversation at all? (What needs no database: the body's
    type, and the sessions-per-IP count. The assistant and the origin are checked in the
    database step that starts it: `session_origin_check`.)"""
    with _refusals_counted():
        if visitor.simple_body:
            raise SimpleRequestRefused()
        await limits.hit(limits.SESSIONS_PER_IP, visitor.ip_hash)


def session_origin_check(visitor: Visitor, assistant: Assistant) -> None:
    """May the visitor's page use this assistant? (A refusal is counted as the gate's.)"""
    with _refusals_counted():
        origin_check(visitor, assistant)


@dataclass(frozen=True)
class Admission:
    """A turn let through the limits: the lease it holds until it ends."""

    lease: limits.Lease


async def turn_admit(visitor: Visitor, *, public_id: str) -> Admission:
    """May this visitor start a turn in this conversation, as far as the limits go? Counted
    before the conversation is looked up: the turn's opening database step does that, checks
    the origin (`turn_origin_check`) and reserves the budget (`budget_reserve`). Whoever
    gets a lease gives it back when the turn ends, or is refused."""
    with _refusals_counted():
        hits = [
            (limits.MESSAGES_PER_IP, visitor.ip_hash),
            (limits.MESSAGES_PER_SESSION, session_hash(public_id)),
        ]
        # In this order, in one round trip to the cache.
        return Admission(lease=await limits.admit(hits, lease_for=visitor.ip_hash))


def turn_origin_check(visitor: Visitor, assistant: Assistant) -> None:
    """May the visitor's page use the conversation's assistant? (A turn's opening step asks,
    with the session it has looked up; a refusal is counted as the gate's.)"""
    with _refusals_counted():
        origin_check(visitor, assistant)


@contextlib.contextmanager
def _refusals_counted() -> Iterator[None]:
    """Count what the gate turns away, by reason (the error's code)."""
    try:
        yield
    except (Refused, OriginNotAllowed, SimpleRequestRefused, IdentityRefused) as exc:
        metrics.REFUSED.labels(exc.code).inc()
        raise

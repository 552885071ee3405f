"""Errors the domain raises; the API turns each into its status, code and message."""


class ChatKitError(Exception):
    """Base of every error a client may be told about."""

    status = 400
    code = "invalid"
    message = "The request is not valid."
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, message: str | None = None, *, retry_after: int | None = None):
        if message is not None:
            self.message = message
        if retry_after is not None:
            self.retry_after = retry_after
        super().__init__(self.message)


class InvalidInput(ChatKitError):
    pass


class NotFound(ChatKitError):
    status = 404
    code = "not_found"
    message = "Not found."


class SessionNotFound(NotFound):
    message = "Session not found."


class AssistantNotFound(NotFound):
    message = "Assistant not found."


class NotAReply(NotFound):
    """Feedback sent for a visitor's message: no reply has that seq."""

    code = "not_a_reply"
    message = "Feedback applies to the assistant's replies only; this message is the visitor's."


class OriginNotAllowed(ChatKitError):
    status = 403
    code = "origin_not_allowed"
    message = "This site may not use this assistant."


class InternalError(ChatKitError):
    """Our own failure (the database, a bug), not the model's: a reply it cut short is stored
    with this code, and a stream already under way ends with it."""

    status = 500
    code = "internal_error"
    message = "The reply failed on the server; try again."
    retryable = True


class ReplyInFlight(ChatKitError):
    status = 409
    code = "reply_in_progress"
    message = "A reply is still being written in this conversation; wait for it to finish."


class Refused(ChatKitError):
    """A request the admission gate turns away for now; `retry_after` says for how long."""

    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int):
        super().__init__(message, retry_after=retry_after)


class RateLimited(Refused):
    code = "rate_limited"
    message = "Too many requests; wait a moment and try again."


class BudgetExhausted(Refused):
    code = "budget_exhausted"
    message = "This assistant has used up today's allowance; try again tomorrow."


class SimpleRequestRefused(ChatKitError):
    """A body type any web page may send cross-site without asking first (text/plain, forms):
    no session is started from one."""

    status = 415
    code = "unsupported_media_type"
    message = "Send the request as application/json."


class ServerShutdown(ChatKitError):
    """The server is stopping (`manage.py serve` got SIGTERM): a turn that arrives is refused,
    and one still running when the grace period ends is cut off, its reply kept `interrupted`.
    Another process, or this one restarted, answers the retry."""

    status = 503
    code = "server_shutdown"
    message = "The server is restarting; try again in a moment."
    retryable = True
    retry_after = 5


class IdentityRefused(ChatKitError):
    """The admission gate's refusal of a visitor's identity token (conversations.identity)."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}  # RFC 6750: the scheme that would be accepted


class TokenInvalid(IdentityRefused):
    code = "token_invalid"
    message = "The identity token is not valid."


class TokenExpired(IdentityRefused):
    code = "token_expired"
    message = "The identity token has expired; get a new one from the site."


class TokenRequired(IdentityRefused):
    code = "token_required"
    message = "This assistant is for signed-in visitors: an identity token is required."

"""Signed-in visitors: the host site's server vouches for its logged-in user with a token.

The token is a JWT signed HS256 with the assistant's identity secret:
`{"sub": "<user id>", "aud": "<assistant slug>", "exp": ..., "iat"?, "name"?, "email"?}`.
This module only reads tokens; the admission gate (conversations.policy) decides what a
request may do with what it finds, and services.identity makes and rotates secrets.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.utils import timezone

from conversations.exceptions import TokenExpired, TokenInvalid
from conversations.models import Assistant

ALGORITHM = "HS256"  # the only one: never `none`, never a public-key one (RS/HS confusion)
# Clocks of the host's server and ours disagree a little.
LEEWAY_SECONDS = 30
SECRET_BYTES = 32
# What a name or an email from a token may take: the columns' size.
CLAIM_CHARS = 255


@dataclass(frozen=True)
class Identity:
    """Who the host site says the visitor is: its user id (`sub`), and what else it told."""

    sub: str
    name: str = ""
    email: str = ""


def secret_new() -> str:
    """A new identity secret: SECRET_BYTES random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; "" for none or another scheme."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def claimed_sub(token: str) -> str:
    """The `sub` a token claims, unverified: what a conversation's lookup may match on before
    its assistant (whose secret verifies it) is known. "" when it claims none."""
    if not token:
        return ""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    sub = claims.get("sub")
    return sub[:CLAIM_CHARS] if isinstance(sub, str) else ""


def secrets_valid(assistant: Assistant, *, now: datetime) -> list[str]:
    """The secrets a token for this assistant may be signed with: the current one, and the
    previous one during the grace period after a rotation."""
    valid = [assistant.identity_secret] if assistant.identity_secret else []
    grace = timedelta(hours=settings.CHATKIT_IDENTITY_ROTATION_GRACE_HOURS)
    rotated = assistant.identity_rotated_at
    if assistant.identity_secret_previous and rotated is not None and now < rotated + grace:
        valid.append(assistant.identity_secret_previous)
    return valid


def token_verify(token: str, *, assistant: Assistant) -> Identity:
    """The identity a token proves for this assistant. Raises TokenExpired, or TokenInvalid
    for anything else wrong with it (signature, algorithm, audience, claims, lifetime)."""
    now = timezone.now()
    keys = secrets_valid(assistant, now=now)
    if not keys:
        raise TokenInvalid("This assistant has no identity secret yet.")
    claims = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=assistant.slug,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "aud", "sub"], "strict_aud": True},
            )
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with the previous secret
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.InvalidAudienceError:
            raise TokenInvalid("The token is for another assistant (its `aud`).") from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"The token is not valid: {_reason(exc)}") from None
        break
    if claims is None:
        raise TokenInvalid("The token's signature does not match this assistant's secret.")
    return _identity(claims, now=now)


def _identity(claims: dict, *, now: datetime) -> Identity:
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.strip() or len(sub) > CLAIM_CHARS:
        raise TokenInvalid(f"The token's `sub` must be a string of 1 to {CLAIM_CHARS} characters.")
    max_age = settings.CHATKIT_IDENTITY_TOKEN_MAX_AGE
    exp = claims["exp"]
    if exp > now.timestamp() + max_age + LEEWAY_SECONDS:
        raise TokenInvalid(f"The token lives too long: at most {max_age} seconds from now.")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and exp - iat > max_age:
        raise TokenInvalid(f"The token lives too long: at most {max_age} seconds from its iat.")
    return Identity(sub=sub, name=_text(claims.get("name")), email=_text(claims.get("email")))


def _text(value) -> str:
    # Optional claims: a string, cut to the column; anything else is ignored, not refused.
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "").strip()[:CLAIM_CHARS]


def _reason(exc: Exception) -> str:
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"only {ALGORITHM} is accepted."
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the `{exc.claim}` claim is required."
    if isinstance(exc, jwt.DecodeError):
        return "it is not a well-formed JWT."
    return str(exc) or exc.__class__.__name__

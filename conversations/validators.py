"""Validators for assistant settings stored as JSON; importable before apps load (settings)."""

import base64
import re

from django.core.exceptions import ValidationError

# scheme://host[:port], lower case, nothing after it: what a browser sends as `Origin` (and
# what django-cors-headers compares, letter for letter).
ORIGIN = re.compile(r"https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?")
# A rate limit, "count/period": 10/m, 30/h, 5/15m (s, m, h, d), as django-ratelimit writes it.
RATE = re.compile(r"(\d+)/([1-9]\d*)?([smhd])")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STARTER_PROMPTS_MAX = 6
STARTER_PROMPT_CHARS = 200


def validate_origins(value) -> None:
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        raise ValidationError('Enter a list of origins, like ["https://www.example.com"].')
    bad = [o for o in value if not ORIGIN.fullmatch(o)]
    if bad:
        raise ValidationError(
            "Not an origin (scheme://host[:port], no path): %(bad)s", params={"bad": ", ".join(bad)}
        )


def validate_starter_prompts(value) -> None:
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ValidationError("Enter a list of non-empty texts.")
    if len(value) > STARTER_PROMPTS_MAX:
        raise ValidationError(f"At most {STARTER_PROMPTS_MAX} starter prompts.")
    if any(len(p) > STARTER_PROMPT_CHARS for p in value):
        raise ValidationError(f"Each starter prompt is at most {STARTER_PROMPT_CHARS} characters.")


def parse_rate(rate: str) -> tuple[int, int]:
    """A rate as (count, window in seconds); ValueError for anything else."""
    match = RATE.fullmatch(rate.strip())
    if match is None:
        raise ValueError(f"{rate!r} is not a rate like 10/m, 30/h or 5/15m")
    count, multiple, period = match.groups()
    return int(count), int(multiple or 1) * _PERIOD_SECONDS[period]


def fernet_key_problem(key: str) -> str | None:
    """Why `key` is not a Fernet key (32 bytes in URL-safe base64, as Fernet.generate_key()
    prints it), or None. Never repeats the key: it is a secret."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}=", key):
        return "not 44 characters of URL-safe base64 ending in '='"
    try:
        raw = base64.urlsafe_b64decode(key)
    except ValueError:
        return "not URL-safe base64"
    return None if len(raw) == 32 else "not 32 bytes"

"""Reading settings from the environment: a malformed value stops start-up with an
ImproperlyConfigured that names the variable and what it should be, and never repeats the
value of a secret (a key, a token, a URL that may hold a password)."""

import warnings
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

# Variables whose values no error message may show.
SECRETS = frozenset({"SECRET_KEY", "OPENAI_API_KEY", "METRICS_TOKEN", "DATABASE_URL", "REDIS_URL"})

_EXPECTED = {int: "a whole number", float: "a number", bool: "true or false"}
_TRUE = ("true", "on", "yes", "y", "1")
_FALSE = ("false", "off", "no", "n", "0")
DATABASE_ENGINES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")
DATABASE_URL_FORM = "postgres://USER:PASSWORD@HOST:5432/NAME or sqlite:///PATH"
REDIS_SCHEMES = ("redis", "rediss", "unix")


class Env(environ.Env):
    """django-environ's reader, strict: an empty value counts as unset (as in a copied
    `.env.example`), a boolean is one of the usual words, and a value that does not parse
    names its variable instead of raising a bare ValueError."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        raw = self.ENVIRON.get(var)
        typed = cast is not None and cast is not str
        if typed and default is not self.NOTSET and (raw is None or not raw.strip()):
            return default
        if cast is bool and raw is not None and raw.strip().lower() not in _TRUE + _FALSE:
            raise _malformed(var, raw, "true or false")
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (ValueError, TypeError):
            expected = _EXPECTED.get(cast, "a valid value") if isinstance(cast, type) else None
            raise _malformed(var, raw, expected or "a valid value") from None

    def database(self, var: str, default: str) -> dict:
        """Django's DATABASES entry from a URL: PostgreSQL or SQLite."""
        url = self.str(var, default="") or default
        try:
            port_ok = _port_parses(url)
            with warnings.catch_warnings():  # django-environ's warning prints the password
                warnings.simplefilter("ignore")
                config = self.db_url_config(url) if port_ok else {}
        except (ValueError, KeyError, TypeError):
            config = {}
        if not port_ok:
            raise ImproperlyConfigured(f"{var}: its port is not a number ({DATABASE_URL_FORM}).")
        if config.get("ENGINE") not in DATABASE_ENGINES:
            raise ImproperlyConfigured(
                f"{var} must be a PostgreSQL or SQLite URL, like {DATABASE_URL_FORM}."
            )
        return config

    def redis_url(self, var: str) -> str:
        """A Redis URL (redis://, rediss:// or unix://), or "" when unset."""
        url = self.str(var, default="")
        if url and (urlsplit(url).scheme not in REDIS_SCHEMES or not _port_parses(url)):
            raise ImproperlyConfigured(
                f"{var} must be a Redis URL, like redis://HOST:6379/0 (or rediss://, unix://)."
            )
        return url


def _port_parses(url: str) -> bool:
    try:
        urlsplit(url).port  # noqa: B018 (it raises when the port is not a number)
    except ValueError:
        return False
    return True


def _malformed(var: str, raw: str | None, expected: str) -> ImproperlyConfigured:
    shown = "" if var in SECRETS or raw is None else f", not {raw!r}"
    return ImproperlyConfigured(f"{var} must be {expected}{shown}.")

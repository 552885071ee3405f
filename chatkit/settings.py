"""ChatKit settings, read from the environment (12-factor) through django-environ.

Every variable is listed and explained in `.env.example`. Development defaults are safe
(localhost only, SQLite, demo mode); with `DEBUG` off, missing or insecure values stop the
process at start-up instead of running half-configured.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from chatkit import routes
from chatkit.environment import Env
from chatkit.logging import TEXT_FORMAT
from conversations.validators import ORIGIN, fernet_key_problem, parse_rate
from widget.caching import add_headers as widget_static_headers

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
# A local `.env` fills in what the real environment does not set (CHATKIT_ENV_FILE="" skips it).
_env_file = env.str("CHATKIT_ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file:
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# An empty value counts as unset throughout, as in a copied `.env.example`.
_DEV_SECRET_KEY = "django-insecure-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="") or (_DEV_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[]) or (
    ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)

# --- Applications -------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "conversations",
    "widget",
    "audit",
]

MIDDLEWARE = [
    "chatkit.middleware.ProbeHostMiddleware",  # before anything asks for the host
    "django.middleware.security.SecurityMiddleware",
    "chatkit.middleware.ContentSecurityPolicyMiddleware",
    "chatkit.middleware.StaticFilesMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatkit.urls"
WSGI_APPLICATION = "chatkit.wsgi.application"
ASGI_APPLICATION = "chatkit.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------

DATABASES = {
    "default": env.database("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    # The pool is set here, not in the URL: a URL query yields strings, which psycopg rejects.
    _db["OPTIONS"] = {
        **_db.get("OPTIONS", {}),
        "pool": {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=4),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        },
    }
    _pool = _db["OPTIONS"]["pool"]
    if not (_pool["max_size"] >= 1 and 0 <= _pool["min_size"] <= _pool["max_size"]):
        raise ImproperlyConfigured(
            "DB_POOL_MAX_SIZE must be at least 1, and DB_POOL_MIN_SIZE between 0 and it."
        )
    # Django refuses persistent connections together with a pool; under ASGI they would
    # leak anyway, one per thread.
    _db["CONN_MAX_AGE"] = 0
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside a writer; IMMEDIATE takes the write lock at BEGIN, so two
    # processes writing at once queue behind the busy timeout instead of failing with
    # "database is locked" half-way through a transaction.
    _db["OPTIONS"] = {
        **_db.get("OPTIONS", {}),
        "transaction_mode": "IMMEDIATE",
        "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=20.0),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The most PostgreSQL connections one `manage.py serve` may open: its workers times
# DB_POOL_MAX_SIZE. It refuses to start over it. 80 fits one machine against PostgreSQL's default
# max_connections (100, 3 kept for superusers, the rest for migrations, commands and the admin
# shell); with several machines, give each its share. 0: not checked.
CHATKIT_DB_CONNECTION_BUDGET = env.int("CHATKIT_DB_CONNECTION_BUDGET", default=80)
if CHATKIT_DB_CONNECTION_BUDGET < 0:
    raise ImproperlyConfigured("CHATKIT_DB_CONNECTION_BUDGET must be 0 (unchecked) or more.")

# --- Cache --------------------------------------------------------------------------------

REDIS_URL = env.redis_url("REDIS_URL")
# Seconds to wait for Redis to connect or answer: rate limits fail open rather than hang.
CHATKIT_CACHE_TIMEOUT = env.float("CHATKIT_CACHE_TIMEOUT", default=0.5)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CHATKIT_CACHE_TIMEOUT,
                "socket_timeout": CHATKIT_CACHE_TIMEOUT,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "chatkit",
        }
    }

# --- Internationalisation, static files ---------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# The widget's stable URL gets a short Cache-Control and an ETag, not WhiteNoise's default.
if not DEBUG:
    WHITENOISE_ADD_HEADERS_FUNCTION = widget_static_headers

# --- Auth ---------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API ----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # Public endpoints: the session id is the visitor's bearer secret, so no cookie
    # authentication (and so no CSRF) anywhere in the API.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["conversations.api.parsers.CappedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # `Accept: text/event-stream` (or anything else) never makes a 406: errors are JSON.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "conversations.api.negotiation.JSONWhateverAccepted",
    "EXCEPTION_HANDLER": "conversations.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # No `?format=` switch: every endpoint answers JSON and nothing else.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ChatKit API",
    "DESCRIPTION": "Embeddable AI chat assistant: sessions, messages and feedback.",
    "VERSION": "1.0.0",
    # 3.1: its schemas are JSON Schema 2020-12, whose contentMediaType and contentSchema
    # describe the JSON inside each event of the reply stream.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Signed-in visitors: the identity token the host site signs (conversations.identity).
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "visitorToken": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A signed-in visitor's identity token: HS256, signed by the host "
                "site's server with the assistant's identity secret.",
            }
        }
    },
    # Swagger UI from the sidecar package: served locally, nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from swagger.io's online validator: it would send it the schema's URL (and is
    # an image from elsewhere, which the CSP refuses).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
}

# --- CORS: which sites may embed the widget -----------------------------------------------

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_ALL_ORIGINS = DEBUG and not CORS_ALLOWED_ORIGINS
CORS_URLS_REGEX = routes.CORS_URLS_REGEX
CORS_ALLOW_CREDENTIALS = False
# The widget reads how long to wait after a 429 or 503.
CORS_EXPOSE_HEADERS = ["Retry-After"]

# --- The LLM --------------------------------------------------------------------------------

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="") or "gpt-4o-mini"
OPENAI_TIMEOUT = env.float("OPENAI_TIMEOUT", default=60.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
# Connections to the model per process: each open stream holds one while the model writes.
OPENAI_MAX_CONNECTIONS = env.int("OPENAI_MAX_CONNECTIONS", default=10_000)
# A streamed reply whose first token takes longer than this (seconds) fails, retryable.
OPENAI_FIRST_TOKEN_TIMEOUT = env.float("OPENAI_FIRST_TOKEN_TIMEOUT", default=30.0)

# --- ChatKit --------------------------------------------------------------------------------

CHATKIT_MAX_MESSAGE_CHARS = env.int("CHATKIT_MAX_MESSAGE_CHARS", default=1000)
# Request bodies over these are refused before they are read (chatkit/bodies.py): the API's
# and the probes', and every other route's (the admin's forms, the demo page).
CHATKIT_MAX_BODY_BYTES = env.int("CHATKIT_MAX_BODY_BYTES", default=64 * 1024)
CHATKIT_ADMIN_MAX_BODY_BYTES = env.int("CHATKIT_ADMIN_MAX_BODY_BYTES", default=1024 * 1024)
for _name in ("CHATKIT_MAX_BODY_BYTES", "CHATKIT_ADMIN_MAX_BODY_BYTES"):
    # Past FILE_UPLOAD_MAX_MEMORY_SIZE, Django would spool an accepted body to disk.
    if not 0 < globals()[_name] < global_settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
        raise ImproperlyConfigured(
            f"{_name} must be a positive number below FILE_UPLOAD_MAX_MEMORY_SIZE "
            f"({global_settings.FILE_UPLOAD_MAX_MEMORY_SIZE} bytes)."
        )
# How many proxies in front of us append to X-Forwarded-For; 0 trusts none of it.
CHATKIT_TRUSTED_PROXIES = env.int("CHATKIT_TRUSTED_PROXIES", default=0)
# A reply still "streaming" after this long belongs to a process that died.
CHATKIT_REPLY_TIMEOUT = env.float("CHATKIT_REPLY_TIMEOUT", default=300.0)
# Pause between words of the offline demo responder.
CHATKIT_DEMO_DELAY = env.float("CHATKIT_DEMO_DELAY", default=0.04)
# Seconds between `: ping` comments on an open stream, so idle proxies keep it.
CHATKIT_STREAM_PING_SECONDS = env.float("CHATKIT_STREAM_PING_SECONDS", default=15.0)
# Threads per process for the chat pipeline's database steps (not one per stream).
CHATKIT_DB_THREADS = env.int("CHATKIT_DB_THREADS", default=4)
# Seconds between a serving process's heartbeats while it writes replies; a reply whose
# process has missed three stops blocking its conversation and is closed as interrupted.
CHATKIT_HEARTBEAT_SECONDS = env.float("CHATKIT_HEARTBEAT_SECONDS", default=5.0)
for _name in (
    "CHATKIT_HEARTBEAT_SECONDS",
    "CHATKIT_CACHE_TIMEOUT",
    "OPENAI_FIRST_TOKEN_TIMEOUT",
    "CHATKIT_REPLY_TIMEOUT",
    "CHATKIT_STREAM_PING_SECONDS",
    "CHATKIT_DB_THREADS",
    "OPENAI_MAX_CONNECTIONS",
):
    if not globals()[_name] > 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number.")
# The bearer token Prometheus sends to scrape /metrics; unset, /metrics does not exist.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Where `manage.py serve` listens (its --host and --port win).
CHATKIT_HOST = env.str("CHATKIT_HOST", default="127.0.0.1")
CHATKIT_PORT = env.int("CHATKIT_PORT", default=8000)
if not 1 <= CHATKIT_PORT <= 65535:
    raise ImproperlyConfigured("CHATKIT_PORT must be a port number, 1 to 65535.")
# On SIGTERM, how long replies being written get to finish before they are cut off (a
# retryable `server_shutdown` error; the text so far is kept).
CHATKIT_SHUTDOWN_GRACE_SECONDS = env.float("CHATKIT_SHUTDOWN_GRACE_SECONDS", default=20.0)
if CHATKIT_SHUTDOWN_GRACE_SECONDS < 0:
    raise ImproperlyConfigured("CHATKIT_SHUTDOWN_GRACE_SECONDS must not be negative.")
# `manage.py purge_sessions` deletes conversations idle for longer than this by default.
CHATKIT_RETENTION_DAYS = env.int("CHATKIT_RETENTION_DAYS", default=30)
# `manage.py prune_audit` deletes audit events older than this by default: the audit log's
# own retention, longer than the conversations' (a record outlives what it names).
CHATKIT_AUDIT_RETENTION_DAYS = env.int("CHATKIT_AUDIT_RETENTION_DAYS", default=365)
if CHATKIT_AUDIT_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("CHATKIT_AUDIT_RETENTION_DAYS must be 1 or more.")

# Encryption at rest (conversations.encryption): Fernet keys, newest first; the first seals,
# every one opens. Unset: text is stored as it is. A malformed key refuses every start.
CHATKIT_ENCRYPTION_KEYS = [k for k in env.list("CHATKIT_ENCRYPTION_KEYS", default=[]) if k]
for _number, _key in enumerate(CHATKIT_ENCRYPTION_KEYS, start=1):
    if _problem := fernet_key_problem(_key):
        raise ImproperlyConfigured(
            f"CHATKIT_ENCRYPTION_KEYS: key {_number} is {_problem}; generate one with "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key()'
            '.decode())"'
        )
if len(set(CHATKIT_ENCRYPTION_KEYS)) < len(CHATKIT_ENCRYPTION_KEYS):
    raise ImproperlyConfigured("CHATKIT_ENCRYPTION_KEYS lists a key twice.")

# --- Signed-in visitors (conversations.identity) ----------------------------------------------
# The longest a visitor's token may live, in seconds: one whose `exp` is further than this
# from now (or from its `iat`) is refused, so a leaked token is not good for long.
CHATKIT_IDENTITY_TOKEN_MAX_AGE = env.int("CHATKIT_IDENTITY_TOKEN_MAX_AGE", default=3600)
if CHATKIT_IDENTITY_TOKEN_MAX_AGE < 1:
    raise ImproperlyConfigured("CHATKIT_IDENTITY_TOKEN_MAX_AGE must be at least 1 second.")
# After an assistant's identity secret is rotated, how long tokens signed with the previous
# one are still accepted (the host's servers switch over meanwhile); 0: not at all.
CHATKIT_IDENTITY_ROTATION_GRACE_HOURS = env.float(
    "CHATKIT_IDENTITY_ROTATION_GRACE_HOURS", default=24.0
)
if CHATKIT_IDENTITY_ROTATION_GRACE_HOURS < 0:
    raise ImproperlyConfigured("CHATKIT_IDENTITY_ROTATION_GRACE_HOURS must not be negative.")

# --- Rate limits ----------------------------------------------------------------------------
# Counted in the cache (Redis with REDIS_URL: shared by every process), per client IP by its
# keyed hash. Rates read "count/period": s, m, h or d, optionally a multiple ("5/15m").
CHATKIT_RATELIMIT_ENABLED = env.bool("CHATKIT_RATELIMIT_ENABLED", default=True)
RATELIMIT_ENABLE = CHATKIT_RATELIMIT_ENABLED  # django-ratelimit's switch (the admin login)
CHATKIT_RATELIMIT_SESSIONS_PER_IP = env.str("CHATKIT_RATELIMIT_SESSIONS_PER_IP", default="30/h")
CHATKIT_RATELIMIT_MESSAGES_PER_SESSION = env.str(
    "CHATKIT_RATELIMIT_MESSAGES_PER_SESSION", default="10/m"
)
CHATKIT_RATELIMIT_MESSAGES_PER_IP = env.str("CHATKIT_RATELIMIT_MESSAGES_PER_IP", default="120/h")
# Replies being written at once for one client IP (streamed or not).
CHATKIT_RATELIMIT_STREAMS_PER_IP = env.int("CHATKIT_RATELIMIT_STREAMS_PER_IP", default=4)
CHATKIT_RATELIMIT_LOGIN_PER_IP = env.str("CHATKIT_RATELIMIT_LOGIN_PER_IP", default="30/h")
CHATKIT_RATELIMIT_LOGIN_PER_USERNAME = env.str(
    "CHATKIT_RATELIMIT_LOGIN_PER_USERNAME", default="5/15m"
)
# Worker processes of `manage.py serve` (uvicorn reads it too): with more than one, limits
# need a shared cache.
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=1)
for _name in (
    "CHATKIT_RATELIMIT_SESSIONS_PER_IP",
    "CHATKIT_RATELIMIT_MESSAGES_PER_SESSION",
    "CHATKIT_RATELIMIT_MESSAGES_PER_IP",
    "CHATKIT_RATELIMIT_LOGIN_PER_IP",
    "CHATKIT_RATELIMIT_LOGIN_PER_USERNAME",
):
    try:
        parse_rate(globals()[_name])
    except ValueError as exc:
        raise ImproperlyConfigured(f"{_name}: {exc}.") from None
if CHATKIT_RATELIMIT_STREAMS_PER_IP < 1:
    raise ImproperlyConfigured("CHATKIT_RATELIMIT_STREAMS_PER_IP must be at least 1.")

# --- Security -------------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# django-csp's format, set on HTML pages only (chatkit.middleware): the demo, the admin, the
# API docs. Nothing inline, nothing from elsewhere; views add to it with django-csp's
# decorators (the demo page does).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
    }
}
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes talk plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = routes.SECURE_REDIRECT_EXEMPT
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

    _problems = []
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        _problems.append("SECRET_KEY must be set to a random value of 50+ characters")
    if not ALLOWED_HOSTS:
        _problems.append("ALLOWED_HOSTS must list the host names this server answers to")
    if not CORS_ALLOWED_ORIGINS:
        _problems.append("CORS_ALLOWED_ORIGINS must list the sites that embed the widget")
    _bad_origins = [o for o in CORS_ALLOWED_ORIGINS if not ORIGIN.fullmatch(o)]
    if _bad_origins:
        _problems.append(
            "CORS_ALLOWED_ORIGINS entries must be origins like https://www.example.com, not "
            + ", ".join(_bad_origins)
        )
    if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
        _problems.append("METRICS_TOKEN must be a random value of 32+ characters when set")
    if WEB_CONCURRENCY > 1 and not REDIS_URL and CHATKIT_RATELIMIT_ENABLED:
        _problems.append(
            "REDIS_URL must be set with more than one worker (WEB_CONCURRENCY), or every "
            "rate limit would count per worker"
        )
    if "*" in ALLOWED_HOSTS:
        _problems.append("ALLOWED_HOSTS must not be '*'")
    if _problems:
        # One problem a line: `manage.py` prints them as they are, without a traceback.
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off (see .env.example):\n" + "\n".join(_problems)
        )

# --- Logging --------------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
# `text` for people reading a terminal, `json` (one object per line) for log collectors.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
# Log what visitors and the model wrote with each turn (off: only numbers are logged).
CHATKIT_LOG_CONTENT = env.bool("CHATKIT_LOG_CONTENT", default=False)
# Libraries that log each HTTP request at INFO (the model's SDK and its HTTP client): quiet
# unless LOG_LEVEL=DEBUG, so that a chat turn makes one line.
_QUIET = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
# Applied by chatkit.logging.configure, which keeps uvicorn's `--no-access-log`; uvicorn gets
# the same configuration through chatkit.logging.uvicorn_log_config().
LOGGING_CONFIG = "chatkit.logging.configure"
LOGGING = {
    "version": 1,
    # uvicorn's and Django's own loggers keep working.
    "disable_existing_loggers": False,
    "filters": {
        "redact_session_ids": {"()": "chatkit.logging.RedactSessionIds"},
        "hash_client_addresses": {"()": "chatkit.logging.HashClientAddresses"},
    },
    "formatters": {
        "text": {"class": "chatkit.logging.TextFormatter", "format": TEXT_FORMAT},
        "json": {"()": "chatkit.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # The address first: redaction rewrites the whole message, arguments included.
            "filters": ["hash_client_addresses", "redact_session_ids"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # uvicorn's own lines in the same format; its access log prints paths, and so
        # session ids, and client addresses: through our filters too.
        "uvicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        **{name: {"level": _QUIET} for name in ("httpx", "httpx2", "httpcore", "openai")},
    },
}

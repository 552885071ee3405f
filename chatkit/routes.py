"""The project's routes, named once: the URLconfs, the settings (CORS, the HTTPS redirect's
exemptions), the ASGI handler, the error handlers and the log filter read them here. (The
admin's own pages, the overview among them, are the admin's: under ADMIN.)

Paths are as Django's `path()` writes them: no leading slash. Rename a route here and every
reader follows; in particular the chat routes keep running without a thread of their own.
This module imports nothing of Django's, so that settings can read it.
"""

import re

DEMO = ""
HEALTH = "health"
HEALTH_READY = "health/ready"
METRICS = "metrics"
API = "api"
DOCS = "api/docs"
SCHEMA = "api/schema"
ADMIN = "admin/"

# The original ChatKit backend's wire format.
SEED_CREATE_SESSION = "api/create-session"
SEED_CHAT = "api/chat"

# Version 1, what the widget uses.
V1_ASSISTANT = "api/v1/assistants/<slug:slug>"
V1_SESSIONS = "api/v1/sessions"
V1_SESSION = V1_SESSIONS + "/<str:session_id>"
V1_MESSAGES = V1_SESSION + "/messages"
V1_FEEDBACK = V1_MESSAGES + "/<int:seq>/feedback"

# Whatever else is under /api/ or /health: a JSON 404, whatever DEBUG says. `[\s\S]`, not
# `.`: a path may hold a newline (%0A), and a path no route matches gets Django's HTML 404
# page under DEBUG.
JSON_FALLBACK = rf"^(?:{API}|{HEALTH})(?:/[\s\S]*)?\Z"

# The routes whose errors keep the seed's own shape, `{"error": "text"}`.
SEED_PATHS = frozenset({"/" + SEED_CHAT, "/" + SEED_CREATE_SESSION})
# Requests that wait on the model: the seed chat and v1 messages (JSON or a stream).
CHAT_PATH = re.compile(
    "^/(?:" + re.escape(SEED_CHAT) + "|" + V1_MESSAGES.replace("<str:session_id>", "[^/]+") + r")\Z"
)
# CORS headers for the API only; probes exempt from the HTTPS redirect (plain HTTP inside
# the cluster). These are for settings, which match paths without their leading slash.
CORS_URLS_REGEX = rf"^/{API}/"  # a prefix (re.match): `.*$` missed paths with a newline
SECURE_REDIRECT_EXEMPT = [rf"^{HEALTH}(/|$)", rf"^{METRICS}$"]


def is_json_path(path: str) -> bool:
    """Paths whose every answer is JSON, errors included: the API's and the probes'."""
    return path.startswith(f"/{API}/") or path == f"/{HEALTH}" or path.startswith(f"/{HEALTH}/")


def runs_api_chain(path: str) -> bool:
    """Paths served through the API's own middleware chain, without sessions, CSRF or a thread
    (chatkit.handlers): the JSON paths, but the docs page, whose script carries a CSRF token."""
    return is_json_path(path) and path != f"/{DOCS}"


def app_path(scope: dict) -> str:
    """An ASGI request's route: its path without the prefix the app is mounted under."""
    # Under `uvicorn --root-path /chat`, paths arrive with the prefix; Django strips it too.
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path

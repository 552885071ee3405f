"""Session ids: a conversation's public id, the visitor's only credential for it.

Written once, here, for the model, the lookups, the routes and the log filter. This module
imports nothing of Django's: settings and logging read it before the apps load.
"""

import math
import secrets

SESSION_ID_BYTES = 24  # 192 bits from `secrets`
SESSION_ID_LENGTH = math.ceil(SESSION_ID_BYTES * 4 / 3)  # token_urlsafe's base64, unpadded
URLSAFE = "A-Za-z0-9_-"
# Every id we hand out matches; anything else is not worth a query. (Wider than today's
# ids, so that ids of another length, say a migrated store's, still work.)
SESSION_ID = rf"[{URLSAFE}]{{16,64}}"
SESSION_ID_MAX_LENGTH = 64


def new_session_id() -> str:
    """An opaque, unguessable public id: the visitor's only credential for the session."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)

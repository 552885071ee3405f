"""The HTTP API's views: thin, they parse, call one service or selector, and render.

Public endpoints have no authentication classes: the session id is the visitor's bearer
secret, so a logged-in staff member is treated like any visitor.
"""

from conversations.api.views.probes import HealthView, ReadyView, metrics_view
from conversations.api.views.seed import SeedChatView, SeedCreateSessionView
from conversations.api.views.v1 import (
    AssistantConfigView,
    FeedbackView,
    MessageListView,
    SessionDetailView,
    SessionListView,
)

__all__ = [
    "AssistantConfigView",
    "FeedbackView",
    "HealthView",
    "MessageListView",
    "ReadyView",
    "SeedChatView",
    "SeedCreateSessionView",
    "SessionDetailView",
    "SessionListView",
    "metrics_view",
]

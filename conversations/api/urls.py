from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from chatkit import routes
from conversations.api import errors, views

urlpatterns = [
    path(routes.HEALTH, views.HealthView.as_view(), name="health"),
    path(routes.HEALTH_READY, views.ReadyView.as_view(), name="health-ready"),
    path(routes.METRICS, views.metrics_view, name="metrics"),
    path(
        routes.SEED_CREATE_SESSION,
        views.SeedCreateSessionView.as_view(),
        name="seed-create-session",
    ),
    path(routes.SEED_CHAT, views.SeedChatView.as_view(), name="seed-chat"),
    path(routes.V1_ASSISTANT, views.AssistantConfigView.as_view(), name="assistant"),
    path(routes.V1_SESSIONS, views.SessionListView.as_view(), name="sessions"),
    path(routes.V1_SESSION, views.SessionDetailView.as_view(), name="session"),
    path(routes.V1_MESSAGES, views.MessageListView.as_view(), name="messages"),
    path(routes.V1_FEEDBACK, views.FeedbackView.as_view(), name="feedback"),
    path(routes.SCHEMA, SpectacularJSONAPIView.as_view(), name="schema"),
    # Swagger UI with its start-up script in a file of its own (`?script`): nothing inline.
    path(
        routes.DOCS,
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="conversations/api_docs.html"
        ),
        name="docs",
    ),
    # Anything else under /api/ or /health is a JSON 404, whatever DEBUG says.
    re_path(routes.JSON_FALLBACK, errors.no_such_endpoint),
]

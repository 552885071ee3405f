from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from conversations.api import errors, views

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("health/ready", views.ReadyView.as_view(), name="health-ready"),
    path("metrics", views.metrics_view, name="metrics"),
    path("api/create-session", views.SeedCreateSessionView.as_view(), name="seed-create-session"),
    path("api/chat", views.SeedChatView.as_view(), name="seed-chat"),
    path("api/v1/assistants/<slug:slug>", views.AssistantConfigView.as_view(), name="assistant"),
    path("api/v1/sessions", views.SessionListView.as_view(), name="sessions"),
    path("api/v1/sessions/<str:session_id>", views.SessionDetailView.as_view(), name="session"),
    path(
        "api/v1/sessions/<str:session_id>/messages",
        views.MessageListView.as_view(),
        name="messages",
    ),
    path(
        "api/v1/sessions/<str:session_id>/messages/<int:seq>/feedback",
        views.FeedbackView.as_view(),
        name="feedback",
    ),
    path("api/schema", SpectacularJSONAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Anything else under /api/ or /health is a JSON 404, whatever DEBUG says.
    re_path(r"^(api|health)(/.*)?$", errors.not_found),
]

"""Staff review of assistants and conversations; transcripts are read-only for everyone."""

from django.contrib import admin

from conversations.models import Assistant, Message, Session


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "model", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class MessageInline(admin.TabularInline):
    model = Message
    fields = [
        "seq",
        "role",
        "content",
        "status",
        "created_at",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "ttft_ms",
        "duration_ms",
        "finish_reason",
        "error_code",
        "feedback_rating",
        "feedback_comment",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "last_activity_at", "assistant", "title", "origin"]
    list_filter = ["assistant"]
    list_select_related = ["assistant"]
    # Exact match only: staff can find a conversation whose id a visitor gave them (an erasure
    # request), but the id, the visitor's secret, is never shown.
    search_fields = ["=public_id", "title"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "assistant",
        "created_at",
        "last_activity_at",
        "origin",
        "user_agent",
        "ip_hash",
        "metadata",
        "title",
    ]
    inlines = [MessageInline]

    def has_add_permission(self, request) -> bool:
        return False

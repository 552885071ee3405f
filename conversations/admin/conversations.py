"""Conversations in the admin: the list, the transcript, exports, deletion and the overview.

A conversation's public id is the visitor's secret: it is searchable (exact match, for erasure
requests) and never shown. Nobody edits a transcript, superusers included.
"""

from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from audit.models import AuditEvent
from audit.services import audit_record, mask_session_ids
from conversations import encryption, selectors, services
from conversations.admin import exports
from conversations.admin.filters import (
    HasErrorFilter,
    HasFeedbackFilter,
    HasNegativeFeedbackFilter,
    SignedInFilter,
)
from conversations.admin.overview import overview
from conversations.exceptions import ReplyInFlight
from conversations.models import Assistant, Message, Session


class ConversationChangeList(ChangeList):
    """The conversation list, its numbers from one aggregate over the shown page's messages."""

    def get_results(self, request):
        super().get_results(request)
        page = list(self.result_list)
        numbers = selectors.conversation_numbers(session_ids=[s.pk for s in page])
        for session in page:
            for name, value in numbers[session.pk].items():
                setattr(session, name, value)
        self.result_list = page


def _when(moment) -> str:
    # Compact, so that a conversation's numbers fit beside it on a laptop's screen.
    return date_format(timezone.localtime(moment), "Y-m-d H:i")


def _number(name: str, description: str):
    """A list column showing one of the conversation's numbers; sorting by it counts every
    conversation's messages, so only when asked to."""

    @admin.display(description=description, ordering=selectors.conversation_number(name))
    def column(self, session: Session) -> int:
        return getattr(session, name)

    return column


def _one_line(name: str, ordering: str):
    """A list column showing a field's text on one line, cut to the column's width (admin.css)
    with the whole of it on hover: a visitor's long, unbroken words must not widen the list.

    A function, not a method, so that the change form still shows the field itself; named as
    the field, so the column is too (`field-title`)."""

    @admin.display(description=name, ordering=ordering)
    def column(session: Session):
        text = str(getattr(session, name))
        return format_html('<span class="one-line" title="{}">{}</span>', text, text)

    column.__name__ = name
    return column


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "started",
        "last_activity",
        _one_line("assistant", "assistant"),
        _one_line("title", "title"),
        "message_count",
        "total_tokens",
        "error_count",
        "feedback",
        _one_line("origin", "origin"),
    ]
    list_filter = [
        "assistant",
        "created_at",
        HasErrorFilter,
        HasNegativeFeedbackFilter,
        HasFeedbackFilter,
        SignedInFilter,
    ]
    # Exact match only on the id: staff can find a conversation whose id a visitor gave them
    # (an erasure request), but cannot list ids by prefix. A signed-in visitor's user id is
    # matched exactly too (their index serves it); their name and email by words.
    search_fields = [
        "=public_id",
        "title",
        "messages__content",
        "=visitor_sub",
        "visitor_name",
        "visitor_email",
    ]
    # With encryption at rest the text, names and emails are stored sealed: no database
    # search can read them; the ids are stored as they are.
    encrypted_search_fields = ["=public_id", "=visitor_sub"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    list_per_page = 50
    # Not the public id (the visitor's secret) nor the IP hash.
    fields = [
        "assistant",
        "created_at",
        "last_activity_at",
        "title",
        "origin",
        "user_agent",
        "metadata",
        "visitor_sub",
        "visitor_name",
        "visitor_email",
    ]
    readonly_fields = fields
    actions = ["export_jsonl", "export_csv"]
    change_form_template = "admin/conversations/session/change_form.html"

    message_count = _number("message_count", "messages")
    total_tokens = _number("total_tokens", "tokens")
    error_count = _number("error_count", "errors")

    class Media:
        css = {"all": ["conversations/admin.css"]}

    def get_queryset(self, request):
        # No per-conversation numbers here: every count the admin runs on this queryset (the
        # paginator's, the full count, the date hierarchy's) would then join every message.
        return super().get_queryset(request).select_related("assistant")

    def get_changelist(self, request, **kwargs):
        return ConversationChangeList

    def changelist_view(self, request, extra_context=None):
        # Recorded here, once per list shown, rather than in get_search_results, which the
        # actions run again on the same term.
        term = request.GET.get("q", "").strip()
        if request.method == "GET" and term and self.has_view_or_change_permission(request):
            audit_record(
                action=AuditEvent.Action.SEARCH,
                request=request,
                details={"term": mask_session_ids(term)},
            )
        return super().changelist_view(request, extra_context)

    def get_search_fields(self, request):
        if encryption.keyring().on:
            return self.encrypted_search_fields
        return self.search_fields

    @property
    def search_help_text(self) -> str:
        if encryption.keyring().on:
            return (
                "A conversation's or a signed-in visitor's exact id. Message text, titles and "
                "visitors' names and emails are encrypted at rest, so they cannot be searched."
            )
        return (
            "Words in the title or the messages, or a signed-in visitor's name or email; or a "
            "conversation's or a visitor's exact id."
        )

    def get_list_display(self, request):
        # The visitor's column only where the host site signs visitors in: elsewhere it would
        # take the title's room for nothing. (Asked once a page: Django asks for the columns
        # more than once.)
        columns = list(super().get_list_display(request))
        if not hasattr(request, "_chatkit_identity_in_use"):
            request._chatkit_identity_in_use = selectors.identity_in_use()
        if request._chatkit_identity_in_use:
            columns.insert(columns.index("message_count"), "visitor")
        return columns

    @admin.display(description="visitor", ordering="visitor_sub")
    def visitor(self, session: Session):
        """A signed-in visitor's id, then name and email, each on a line of its own, cut to
        the column with the whole of it on hover; "-" for an anonymous one."""
        if not session.visitor_sub:
            return "-"
        lines = [session.visitor_sub, session.visitor_name, session.visitor_email]
        return format_html_join(
            "", '<span class="one-line" title="{}">{}</span>', ((t, t) for t in lines if t)
        )

    def get_search_results(self, request, queryset, search_term):
        if not search_term:
            return queryset, False
        fields = self.get_search_fields(request)
        return selectors.conversation_search(queryset, term=search_term, fields=fields), False

    @admin.display(description="started", ordering="created_at")
    def started(self, session: Session) -> str:
        return _when(session.created_at)

    @admin.display(description="last activity", ordering="last_activity_at")
    def last_activity(self, session: Session) -> str:
        return _when(session.last_activity_at)

    @admin.display(
        description="feedback (up / down)", ordering=selectors.conversation_number("down_count")
    )
    def feedback(self, session: Session) -> str:
        if not (session.up_count or session.down_count):
            return "-"
        return f"{session.up_count} / {session.down_count}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    # Deleting goes through the service, as the API and the commands do: a conversation whose
    # reply is being written is not deleted under it.
    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and selectors.replies_in_flight().filter(session=obj).exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj: Session) -> None:
        pk = obj.pk  # deleting the row sets it to None
        try:
            services.session_delete(session=obj)
        except ReplyInFlight:
            raise PermissionDenied("A reply is being written in this conversation.") from None
        audit_record(
            action=AuditEvent.Action.DELETE,
            request=request,
            conversation=pk,
            details={"conversations": [pk]},
        )

    def delete_queryset(self, request, queryset) -> None:
        sessions = queryset.select_related(None).only("pk").iterator()
        report = services.session_delete_many(sessions=sessions)
        kept = len(report.in_flight)
        audit_record(
            action=AuditEvent.Action.DELETE,
            request=request,
            conversation=report.deleted_ids[0] if len(report.deleted_ids) == 1 else None,
            details={"conversations": report.deleted_ids, "in_flight": kept},
        )
        if kept:
            self.message_user(
                request,
                f"{kept} of them had a reply being written and were kept; try again later.",
                messages.WARNING,
            )

    def response_delete(self, request, obj_display, obj_id):
        # Django goes back to the list only for who may change; nobody may change a
        # conversation, so it went to the admin's home: back to the list, its filters kept.
        response = super().response_delete(request, obj_display, obj_id)
        if isinstance(response, HttpResponseRedirect) and self.has_view_permission(request):
            changelist = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                current_app=self.admin_site.name,
            )
            preserved = {
                "preserved_filters": self.get_preserved_filters(request),
                "opts": self.opts,
            }
            response["Location"] = add_preserved_filters(preserved, changelist)
        return response

    def get_deleted_objects(self, objs, request):
        """What the confirmation page lists: counts, not every message of every conversation
        (Django's default loads them all, a million with "select all")."""
        # A queryset from the delete action; a list of one from a conversation's page.
        sessions = objs if hasattr(objs, "values") else Session.objects.filter(pk=objs[0].pk)
        conversations, replies = selectors.conversations_size(sessions)
        summary = [f"{conversations} conversation(s) and their {replies} message(s)"]
        counts = {
            Session._meta.verbose_name_plural: conversations,
            Message._meta.verbose_name_plural: replies,
        }
        perms_needed = set() if self.has_delete_permission(request) else {"conversation"}
        return summary, counts, perms_needed, []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["transcript"] = selectors.session_transcript(session=obj)
            audit_record(
                action=AuditEvent.Action.TRANSCRIPT_VIEW, request=request, conversation=obj.pk
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Export selected conversations as JSON Lines", permissions=["view"])
    def export_jsonl(self, request, queryset):
        self._export_record(request, queryset, fmt="jsonl")
        return exports.export_response(queryset, fmt="jsonl")

    @admin.action(description="Export selected conversations as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        self._export_record(request, queryset, fmt="csv")
        return exports.export_response(queryset, fmt="csv")

    def _export_record(self, request, queryset, *, fmt: str) -> None:
        """Record an export: its format, the list's filters and search (any session id
        masked), the ticked conversations or "every one the filters select", and how many."""
        across = request.POST.get("select_across") == "1"
        details = {
            "format": fmt,
            "filter": {k: mask_session_ids(v) for k, v in request.GET.items()},
            "rows": queryset.count(),
        }
        if not across:
            details["conversations"] = sorted(queryset.values_list("pk", flat=True))
        else:
            details["selected"] = "all matching the filter"
        ticked = details.get("conversations", [])
        audit_record(
            action=AuditEvent.Action.EXPORT,
            request=request,
            conversation=ticked[0] if len(ticked) == 1 else None,
            details=details,
        )

    # --- The overview page ---------------------------------------------------------------

    def get_urls(self):
        overview_view = self.admin_site.admin_view(self.overview_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_overview"
        return [path("overview/", overview_view, name=name), *super().get_urls()]

    def overview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        assistants = list(Assistant.objects.order_by("name"))
        chosen = next((a for a in assistants if a.slug == request.GET.get("assistant")), None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Conversations: the last 30 days",
            "opts": self.opts,
            "assistants": assistants,
            "chosen": chosen,
            "overview": overview(assistant=chosen),
        }
        return TemplateResponse(request, "admin/conversations/session/overview.html", context)

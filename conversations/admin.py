"""Staff review of assistants and conversations; transcripts are read-only for everyone.

A conversation's public id is the visitor's secret: it is searchable (exact match, for erasure
requests) and never shown.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import lookup_spawns_duplicates
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import smart_split, unescape_string_literal

from conversations import export, selectors, services
from conversations.admin_overview import overview
from conversations.exceptions import ReplyInFlight, SessionNotFound
from conversations.models import Assistant, Message, Session

# --- Assistants -------------------------------------------------------------------------------


class LinesField(forms.CharField):
    """A list of strings, edited one per line; blank lines are dropped."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]


class AssistantForm(forms.ModelForm):
    # The model's own validators (origins, starter prompts) check the resulting list.
    allowed_origins = LinesField(
        required=False,
        help_text="One origin per line, like https://www.example.com (scheme, host, optional "
        "port; no path). Empty allows every origin in CORS_ALLOWED_ORIGINS.",
    )
    starter_prompts = LinesField(
        required=False, help_text="Suggested first questions, one per line (at most 6)."
    )
    # "shop.example/privacy" is taken as https://, the default of Django 6.
    privacy_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text=Assistant._meta.get_field("privacy_url").help_text,
    )
    # Not stripped by the field, so that a name of only spaces is refused, not silently blank.
    model = forms.CharField(
        required=False,
        strip=False,
        max_length=100,
        help_text="Model name, e.g. gpt-4o-mini or llama3.2; leave empty to use OPENAI_MODEL.",
    )

    class Meta:
        model = Assistant
        fields = [
            "name",
            "slug",
            "is_active",
            "system_prompt",
            "model",
            "temperature",
            "max_output_tokens",
            "context_messages",
            "daily_token_budget",
            "greeting",
            "starter_prompts",
            "accent_color",
            "notice",
            "privacy_url",
            "allowed_origins",
        ]
        help_texts = {
            "temperature": "0 (focused, repeatable) to 2 (varied); 0.7 suits most assistants.",
            "accent_color": "The widget's colour, like #2563eb.",
            "is_active": "Inactive assistants answer 404: the widget does not open.",
        }
        widgets = {"accent_color": forms.TextInput(attrs={"type": "color"})}

    def clean_model(self) -> str:
        name = self.cleaned_data["model"]
        if name and not name.strip():
            raise forms.ValidationError(
                "A model name cannot be only spaces; leave it empty to use OPENAI_MODEL."
            )
        return name.strip()


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    form = AssistantForm
    list_display = ["name", "slug", "model_name", "is_active", "updated_at", "try_it"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["try_it", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "try_it"]}),
        (
            "Model",
            {
                "fields": [
                    "system_prompt",
                    "model",
                    "temperature",
                    "max_output_tokens",
                    "context_messages",
                    "daily_token_budget",
                ]
            },
        ),
        (
            "Widget",
            {"fields": ["greeting", "starter_prompts", "accent_color", "notice", "privacy_url"]},
        ),
        ("Where it may be used", {"fields": ["allowed_origins"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="model", ordering="model")
    def model_name(self, assistant: Assistant) -> str:
        return assistant.model or "(OPENAI_MODEL)"

    @admin.display(description="try it")
    def try_it(self, assistant: Assistant) -> str:
        if assistant.pk is None:
            return "Save the assistant first."
        if not assistant.is_active:
            return "Inactive: activate it to try it."
        url = reverse("demo") + "?" + urlencode({"assistant": assistant.slug})
        note = (
            " (the demo page's own origin must be among the allowed origins)"
            if assistant.allowed_origins
            else ""
        )
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Open the demo page</a>{}', url, note
        )


# --- Conversations ----------------------------------------------------------------------------


class MessageExistsFilter(admin.SimpleListFilter):
    """Conversations with (or without) a message matching `condition`, as a subquery: a join
    would list a conversation once per matching message."""

    condition: Q

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return None
        matching = Exists(Message.objects.filter(self.condition, session=OuterRef("pk")))
        return queryset.filter(matching if self.value() == "yes" else ~matching)


class HasErrorFilter(MessageExistsFilter):
    title = "has an error"
    parameter_name = "has_error"
    condition = Q(status=Message.Status.ERROR)


class HasFeedbackFilter(MessageExistsFilter):
    title = "has feedback"
    parameter_name = "has_feedback"
    condition = ~Q(feedback_rating="")


class HasNegativeFeedbackFilter(MessageExistsFilter):
    title = "has negative feedback"
    parameter_name = "has_negative_feedback"
    condition = Q(feedback_rating=Message.Rating.DOWN)


# A conversation's numbers in the list, aggregated over its messages.
NUMBERS = {
    "message_count": Count("pk"),
    "total_tokens": Coalesce(Sum("prompt_tokens"), 0) + Coalesce(Sum("completion_tokens"), 0),
    "error_count": Count("pk", filter=Q(status=Message.Status.ERROR)),
    "up_count": Count("pk", filter=Q(feedback_rating=Message.Rating.UP)),
    "down_count": Count("pk", filter=Q(feedback_rating=Message.Rating.DOWN)),
}


def _per_conversation(number: str) -> Coalesce:
    """One of NUMBERS for the conversation at hand, as a subquery: to sort the list by it."""
    messages = Message.objects.filter(session=OuterRef("pk")).order_by().values("session")
    return Coalesce(Subquery(messages.annotate(n=NUMBERS[number]).values("n")), 0)


class ConversationChangeList(ChangeList):
    """The conversation list, its numbers from one aggregate over the shown page's messages.

    Annotating the list's queryset instead puts a join of every message into each of the
    admin's queries (the paginator's count, the full count, the date hierarchy's two): six
    seconds a page with a million messages on PostgreSQL. Here the page is one query and its
    numbers one more, whatever the page holds.
    """

    def get_results(self, request):
        super().get_results(request)
        page = list(self.result_list)
        numbers = {
            row.pop("session_id"): row
            for row in Message.objects.filter(session__in=[s.pk for s in page])
            .order_by()
            .values("session_id")
            .annotate(**NUMBERS)
        }
        none = dict.fromkeys(NUMBERS, 0)
        for session in page:
            for name, value in numbers.get(session.pk, none).items():
                setattr(session, name, value)
        self.result_list = page


def _when(moment) -> str:
    # Compact, so that a conversation's numbers fit beside it on a laptop's screen.
    return date_format(timezone.localtime(moment), "Y-m-d H:i")


def _search_lookup(field: str) -> str:
    """The ORM lookup Django's admin makes of a `search_fields` entry."""
    # "=" is an exact match (Django's is iexact): ids are case-sensitive, and the unique
    # index serves an exact match only.
    prefixes = {"^": "istartswith", "=": "exact", "@": "search"}
    if field[0] in prefixes:
        return f"{field[1:]}__{prefixes[field[0]]}"
    return f"{field}__icontains"


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "started",
        "last_activity",
        "assistant",
        "title",
        "message_count",
        "total_tokens",
        "error_count",
        "feedback",
        "origin",
    ]
    list_filter = [
        "assistant",
        "created_at",
        HasErrorFilter,
        HasNegativeFeedbackFilter,
        HasFeedbackFilter,
    ]
    # Exact match only on the id: staff can find a conversation whose id a visitor gave them
    # (an erasure request), but cannot list ids by prefix.
    search_fields = ["=public_id", "title", "messages__content"]
    search_help_text = "Words in the title or the messages, or a conversation's exact id."
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
    ]
    readonly_fields = fields
    actions = ["export_jsonl", "export_csv"]
    change_form_template = "admin/conversations/session/change_form.html"

    class Media:
        css = {"all": ["conversations/admin.css"]}

    def get_queryset(self, request):
        # No per-conversation numbers here: every count the admin runs on this queryset (the
        # paginator's, the full count, the date hierarchy's) would then join every message.
        return super().get_queryset(request).select_related("assistant")

    def get_changelist(self, request, **kwargs):
        return ConversationChangeList

    def get_search_results(self, request, queryset, search_term):
        """Django's search (every word must match one of the fields), shaped for indexes.

        Django ORs the fields' conditions together, across a join to the messages; PostgreSQL
        then reads every conversation. Here each word becomes the ids that match it, one
        query per field (each served by its index: unique, or trigram), put together with
        UNION ALL; `pk IN (...)` joins only those. No join, so no duplicates either.
        """
        if not search_term:
            return queryset, False
        lookups = [_search_lookup(field) for field in self.get_search_fields(request)]
        for bit in smart_split(search_term):
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
                bit = unescape_string_literal(bit)
            first, *others = [self._search_ids(lookup, bit) for lookup in lookups]
            queryset = queryset.filter(pk__in=first.union(*others, all=True))
        return queryset, False

    def _search_ids(self, lookup: str, bit: str):
        """The ids of the conversations in which `lookup` matches `bit`."""
        if not lookup_spawns_duplicates(self.opts, lookup):
            return self.model._default_manager.filter(**{lookup: bit}).order_by().values("pk")
        # Across a reverse foreign key (messages__content): the related rows' foreign keys.
        relation, rest = lookup.split(LOOKUP_SEP, 1)
        reverse = self.opts.get_field(relation)
        related = reverse.related_model._default_manager.filter(**{rest: bit})
        return related.order_by().values(reverse.field.attname)

    @admin.display(description="started", ordering="created_at")
    def started(self, session: Session) -> str:
        return _when(session.created_at)

    @admin.display(description="last activity", ordering="last_activity_at")
    def last_activity(self, session: Session) -> str:
        return _when(session.last_activity_at)

    # Sorting by a number counts every conversation's messages: only when asked to.
    @admin.display(description="messages", ordering=_per_conversation("message_count"))
    def message_count(self, session: Session) -> int:
        return session.message_count

    @admin.display(description="tokens", ordering=_per_conversation("total_tokens"))
    def total_tokens(self, session: Session) -> int:
        return session.total_tokens

    @admin.display(description="errors", ordering=_per_conversation("error_count"))
    def error_count(self, session: Session) -> int:
        return session.error_count

    @admin.display(description="feedback (up / down)", ordering=_per_conversation("down_count"))
    def feedback(self, session: Session) -> str:
        if not (session.up_count or session.down_count):
            return "-"
        return f"{session.up_count} / {session.down_count}"

    # Nobody edits a transcript or starts a conversation here; a superuser included.
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
        try:
            services.session_delete(session=obj)
        except ReplyInFlight:
            raise PermissionDenied("A reply is being written in this conversation.") from None

    def delete_queryset(self, request, queryset) -> None:
        kept = 0
        for session in queryset.select_related(None).only("pk").iterator():
            try:
                services.session_delete(session=session)
            except ReplyInFlight:
                kept += 1
            except SessionNotFound:
                pass  # deleted meanwhile
        if kept:
            self.message_user(
                request,
                f"{kept} of them had a reply being written and were kept; try again later.",
                messages.WARNING,
            )

    def get_deleted_objects(self, objs, request):
        """What the confirmation page lists: counts, not every message of every conversation
        (Django's default loads them all, a million with "select all")."""
        # A queryset from the delete action; a list of one from a conversation's page.
        sessions = Session.objects.filter(pk__in=[obj.pk for obj in objs])
        if hasattr(objs, "values"):
            sessions = objs
        conversations = sessions.count()
        replies = Message.objects.filter(session__in=sessions.values("pk")).count()
        summary = [f"{conversations} conversation(s) and their {replies} message(s)"]
        counts = {
            Session._meta.verbose_name_plural: conversations,
            Message._meta.verbose_name_plural: replies,
        }
        perms_needed = set() if self.has_delete_permission(request) else {"conversation"}
        return summary, counts, perms_needed, []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["transcript"] = obj.messages.order_by("seq")
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Export selected conversations as JSON Lines", permissions=["view"])
    def export_jsonl(self, request, queryset):
        return export.export_response(queryset, fmt="jsonl")

    @admin.action(description="Export selected conversations as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return export.export_response(queryset, fmt="csv")

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

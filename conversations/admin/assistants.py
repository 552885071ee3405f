"""Assistants in the admin: every setting, lists edited one per line, a link to try one; the
identity secret generated (never typed in) and shown once."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import urlencode

from audit.models import AuditEvent
from audit.services import audit_record, field_changes
from conversations import selectors, services
from conversations.models import Assistant

# Where a secret just generated waits (in the staff member's server-side session, never in a
# URL or a cookie) for the page that shows it once.
NEW_SECRETS = "chatkit.identity_secrets_new"

# The editable settings, by the section of the assistant's page they are shown in.
SECTIONS = {
    None: ["name", "slug", "is_active"],
    "Model": [
        "system_prompt",
        "model",
        "temperature",
        "max_output_tokens",
        "context_messages",
    ],
    "Budget": ["daily_token_budget", "unavailable_message"],
    "Widget": ["greeting", "starter_prompts", "accent_color", "notice", "privacy_url"],
    "Where it may be used": ["allowed_origins"],
    "Signed-in visitors": ["identity_mode"],
}


def _settings_of(assistant: Assistant | None) -> dict:
    """An assistant's stored settings by field name (none for a new one), as the audit log
    compares them: every editable field, those added later (secrets) included."""
    if assistant is None:
        return {}
    return {
        field.attname: field.value_from_object(assistant)
        for field in Assistant._meta.concrete_fields
        if field.editable and not field.primary_key
    }


def _identity_secrets_of(assistant: Assistant) -> dict:
    """The identity secret's fields (not editable, so not in `_settings_of`), as the audit
    log compares them: the secrets themselves masked by `field_changes`."""
    return {
        name: getattr(assistant, name)
        for name in ("identity_secret", "identity_secret_previous", "identity_rotated_at")
    }


# Read-only fields shown in a section beside its settings.
READ_ONLY_BESIDE = {"Budget": ["budget_today"], "Signed-in visitors": ["identity_secret_state"]}


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i T")


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
        fields = [field for fields in SECTIONS.values() for field in fields]
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
    list_display = [
        "name",
        "slug",
        "model_name",
        "is_active",
        "budget_today",
        "updated_at",
        "try_it",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "try_it",
        "budget_today",
        "created_at",
        "updated_at",
        "identity_secret_state",
    ]
    actions = ["identity_secret_generate"]
    fieldsets = [
        (None, {"fields": [*SECTIONS[None], "try_it"]}),
        *[
            (title, {"fields": [*fields, *READ_ONLY_BESIDE.get(title, [])]})
            for title, fields in SECTIONS.items()
            if title
        ],
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return selectors.with_spent_today(super().get_queryset(request))

    def save_model(self, request, obj: Assistant, form, change: bool) -> None:
        before = _settings_of(Assistant.objects.filter(pk=obj.pk).first() if change else None)
        super().save_model(request, obj, form, change)
        action = AuditEvent.Action.ASSISTANT_CHANGE if change else AuditEvent.Action.ASSISTANT_ADD
        audit_record(
            action=action,
            request=request,
            details={
                "assistant": obj.pk,
                "slug": obj.slug,
                "changes": field_changes(before=before, after=_settings_of(obj)),
            },
        )

    def delete_model(self, request, obj: Assistant) -> None:
        pk, slug = obj.pk, obj.slug
        super().delete_model(request, obj)
        self._delete_record(request, [(pk, slug)])

    def delete_queryset(self, request, queryset) -> None:
        gone = list(queryset.values_list("pk", "slug"))
        super().delete_queryset(request, queryset)
        self._delete_record(request, gone)

    def _delete_record(self, request, gone: list[tuple[int, str]]) -> None:
        audit_record(
            action=AuditEvent.Action.ASSISTANT_DELETE,
            request=request,
            details={"assistants": [{"assistant": pk, "slug": slug} for pk, slug in gone]},
        )

    @admin.display(description="spent today (UTC)")
    def budget_today(self, assistant: Assistant) -> str:
        if assistant.pk is None:
            return "Nothing yet."
        spent = getattr(assistant, "spent_today", None)
        if spent is None:
            spent = selectors.spent_today(assistant)
        budget = assistant.daily_token_budget
        if not budget:
            return f"{spent:,} tokens (no budget)"
        return f"{spent:,} of {budget:,} tokens ({spent * 100 // budget}%)"

    @admin.display(description="model", ordering="model")
    def model_name(self, assistant: Assistant) -> str:
        return assistant.model or "(OPENAI_MODEL)"

    @admin.action(
        description="Generate a new identity secret (the current one stays valid for the "
        "grace period)",
        permissions=["change"],
    )
    def identity_secret_generate(self, request, queryset):
        # Kept for the list's next page, which shows each once: not put in a message now, as
        # the messages framework may carry it in a cookie.
        new = {}
        for assistant in queryset:
            before = _identity_secrets_of(assistant)
            new[assistant.slug] = services.identity_secret_rotate(assistant=assistant)
            audit_record(
                action=AuditEvent.Action.ASSISTANT_CHANGE,
                request=request,
                details={
                    "assistant": assistant.pk,
                    "slug": assistant.slug,
                    "changes": field_changes(before=before, after=_identity_secrets_of(assistant)),
                },
            )
        request.session[NEW_SECRETS] = {**request.session.get(NEW_SECRETS, {}), **new}

    def changelist_view(self, request, extra_context=None):
        # Added while this page renders, and read by it: a message never leaves the server.
        for slug, secret in request.session.pop(NEW_SECRETS, {}).items():
            self.message_user(
                request,
                format_html(
                    "The identity secret of {} is <code>{}</code>. Copy it to the host site's "
                    "server now: it is not shown again.",
                    slug,
                    secret,
                ),
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="identity secret")
    def identity_secret_state(self, assistant: Assistant) -> str:
        if not assistant.identity_secret:
            return (
                'Not set. Generate one with the action "Generate a new identity secret" '
                "on the list of assistants; it is shown once."
            )
        state = "Set"
        if assistant.identity_rotated_at is not None:
            state += f", rotated at {_when(assistant.identity_rotated_at)}"
            grace = timedelta(hours=settings.CHATKIT_IDENTITY_ROTATION_GRACE_HOURS)
            until = assistant.identity_rotated_at + grace
            if assistant.identity_secret_previous and timezone.now() < until:
                state += f"; the previous one is accepted until {_when(until)}"
        return state + ". Not shown again: generate a new one if it is lost."

    @admin.display(description="try it")
    def try_it(self, assistant: Assistant) -> str:
        if assistant.pk is None:
            return "Save the assistant first."
        if not assistant.is_active:
            return "Inactive: activate it to try it."
        url = reverse("demo") + "?" + urlencode({"assistant": assistant.slug})
        # The chat host's own pages may always use an assistant, whatever its origins.
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Open the demo page</a>', url
        )

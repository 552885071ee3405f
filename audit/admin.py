"""The audit log in the admin: read-only for everyone, superusers included, with filters and
a CSV export of what the filters select (the export itself recorded)."""

import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponseBadRequest
from django.urls import path

from audit import exports, selectors
from audit.models import AuditEvent
from audit.services import audit_record, mask_session_ids

DETAILS_SHOWN = 120  # characters of an event's details in the list; its page has them all


class ActorFilter(admin.SimpleListFilter):
    """Events by who acted (a staff member's username, or a command's OS user)."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        return [(name, name) for name in selectors.audit_actors()]

    def queryset(self, request, queryset):
        if self.value() is None:
            return None
        return queryset.filter(actor=self.value())


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_type", "actor", "action", "conversation", "summary"]
    list_filter = ["action", "actor_type", ActorFilter, "at"]
    # Any name, a failed sign-in's included (not offered by the filter), exactly.
    search_fields = ["=actor"]
    search_help_text = "An actor's exact name (a username tried in a failed sign-in, too)."
    date_hierarchy = "at"
    ordering = ["-at", "-pk"]
    list_per_page = 100
    fields = [
        "at",
        "actor_type",
        "actor_id",
        "actor",
        "action",
        "conversation",
        "ip_hash",
        "details",
    ]
    readonly_fields = fields
    change_list_template = "admin/audit/auditevent/change_list.html"

    # Append-only: nobody adds, changes or deletes a record here (the prune command removes
    # old ones). With no delete permission Django offers no delete action either.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="details")
    def summary(self, event: AuditEvent) -> str:
        text = json.dumps(event.details, cls=DjangoJSONEncoder, ensure_ascii=False)
        return text if len(text) <= DETAILS_SHOWN else text[: DETAILS_SHOWN - 1] + "…"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/", export, name=name), *super().get_urls()]

    def export_view(self, request):
        """The events the list's filters (in the query string) select, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filters.")
        events = changelist.get_queryset(request)
        # The export holds the events there are now, not the one recording it nor later ones.
        last = events.order_by("-pk").values_list("pk", flat=True).first() or 0
        events = events.filter(pk__lte=last)
        audit_record(
            action=AuditEvent.Action.AUDIT_EXPORT,
            request=request,
            details={
                "filter": {k: mask_session_ids(v) for k, v in request.GET.items()},
                "rows": events.count(),
            },
        )
        return exports.export_response(events)

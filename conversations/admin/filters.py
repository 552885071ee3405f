"""The conversation list's filters on what its messages hold, and on who its visitor is."""

from django.contrib import admin
from django.db.models import Q

from conversations import selectors
from conversations.models import Message


class MessageExistsFilter(admin.SimpleListFilter):
    """Conversations with (or without) a message matching `condition`."""

    condition: Q

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return None
        present = self.value() == "yes"
        return selectors.conversations_having(queryset, message=self.condition, present=present)


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


class SignedInFilter(admin.SimpleListFilter):
    """Conversations of visitors the host site signed in (a token's `sub`), or anonymous ones."""

    title = "visitor"
    parameter_name = "signed_in"

    def lookups(self, request, model_admin):
        return [("yes", "Signed in"), ("no", "Anonymous")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(visitor_sub="")
        if self.value() == "no":
            return queryset.filter(visitor_sub="")
        return None

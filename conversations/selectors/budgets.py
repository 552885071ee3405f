"""What assistants have spent of their daily token budgets."""

from datetime import UTC, date, datetime

from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import Assistant, DailySpend


def utc_day(now: datetime) -> date:
    """The day a budget counts in: budgets start anew at midnight UTC."""
    return now.astimezone(UTC).date()


def with_spent_today(assistants: QuerySet[Assistant]) -> QuerySet[Assistant]:
    """Assistants annotated with `spent_today`: tokens spent (and held by replies being
    written) on the current UTC day."""
    today = DailySpend.objects.filter(assistant=OuterRef("pk"), day=utc_day(timezone.now()))
    return assistants.annotate(
        spent_today=Coalesce(
            Subquery(today.values("tokens")[:1], output_field=IntegerField()), Value(0)
        )
    )


def spent_today(assistant: Assistant) -> int:
    spend = DailySpend.objects.filter(assistant=assistant, day=utc_day(timezone.now())).first()
    return spend.tokens if spend else 0

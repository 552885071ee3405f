"""The last days of conversations in numbers, for the admin's overview: aggregates only, one
query per table and grouping, whatever the data holds."""

from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, ExtractHour, TruncDate
from django.utils import timezone

from conversations.models import Assistant, Message, Session

# What each day counts besides its conversations.
DAY_NUMBERS = ("messages", "tokens", "replies", "errors", "up", "down")


def overview_numbers(*, days: int, assistant: Assistant | None = None) -> dict:
    """Per day of the last `days` (today included): conversations, messages, tokens, replies,
    failed replies, feedback up and down; and visitor messages per hour of the day."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    sessions = Session.objects.filter(created_at__gte=since)
    messages = Message.objects.filter(created_at__gte=since)
    if assistant is not None:
        sessions = sessions.filter(assistant=assistant)
        messages = messages.filter(session__assistant=assistant)

    conversations = dict(
        sessions.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    per_day = _message_numbers_per_day(messages)
    by_hour = dict(
        messages.filter(role=Message.Role.USER)
        .annotate(hour=ExtractHour("created_at"))
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    empty = dict.fromkeys(DAY_NUMBERS, 0)
    rows = [
        {"day": day, "conversations": conversations.get(day, 0), **per_day.get(day, empty)}
        for day in (first + timedelta(days=n) for n in range(days))
    ]
    return {
        "first_day": first,
        "last_day": today,
        "days": rows,
        "hours": [(hour, by_hour.get(hour, 0)) for hour in range(24)],
    }


def _message_numbers_per_day(messages) -> dict[date, dict[str, int]]:
    reply = Q(role=Message.Role.ASSISTANT)
    rows = (
        messages.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            messages=Count("pk"),
            tokens=Coalesce(Sum("prompt_tokens"), 0) + Coalesce(Sum("completion_tokens"), 0),
            replies=Count("pk", filter=reply),
            errors=Count("pk", filter=reply & Q(status=Message.Status.ERROR)),
            up=Count("pk", filter=Q(feedback_rating=Message.Rating.UP)),
            down=Count("pk", filter=Q(feedback_rating=Message.Rating.DOWN)),
        )
    )
    return {row.pop("day"): row for row in rows}

"""The admin's overview: the last 30 days in numbers and server-drawn bar charts.

Reads only, all from aggregate queries (one per table and grouping), whatever the data holds.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, ExtractHour, TruncDate
from django.utils import timezone

from conversations.models import Assistant, Message, Session

DAYS = 30

# The charts' geometry, in SVG user units (the SVG scales to the page's width).
CHART_HEIGHT = 120
BAR_WIDTH = 16
BAR_GAP = 4


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: int
    y: int
    height: int


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    peak: int
    width: int
    height: int = CHART_HEIGHT
    bar_width: int = BAR_WIDTH


def bar_chart(title: str, points: list[tuple[str, int]]) -> Chart:
    """Bars scaled to the highest value; a non-zero value is always at least 1 unit high."""
    peak = max((value for _, value in points), default=0)
    bars = []
    for i, (label, value) in enumerate(points):
        height = round(value / peak * CHART_HEIGHT) if peak else 0
        if value and not height:
            height = 1
        x = i * (BAR_WIDTH + BAR_GAP)
        bars.append(Bar(label=label, value=value, x=x, y=CHART_HEIGHT - height, height=height))
    return Chart(title=title, bars=bars, peak=peak, width=len(points) * (BAR_WIDTH + BAR_GAP))


def _percent(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def overview(*, assistant: Assistant | None = None) -> dict:
    """Conversations, messages and tokens per day for the last 30 days (today included), the
    error rate of replies, the visitors' feedback and their busiest hours of the day."""
    today = timezone.localdate()
    first = today - timedelta(days=DAYS - 1)
    days = [first + timedelta(days=n) for n in range(DAYS)]
    since = timezone.make_aware(datetime.combine(first, time.min))

    sessions = Session.objects.filter(created_at__gte=since)
    messages = Message.objects.filter(created_at__gte=since)
    if assistant is not None:
        sessions = sessions.filter(assistant=assistant)
        messages = messages.filter(session__assistant=assistant)

    conversations_by_day = dict(
        sessions.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    reply = Q(role=Message.Role.ASSISTANT)
    message_rows = {
        row["day"]: row
        for row in messages.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            messages=Count("pk"),
            tokens=Coalesce(Sum("prompt_tokens"), 0) + Coalesce(Sum("completion_tokens"), 0),
            replies=Count("pk", filter=reply),
            errors=Count("pk", filter=reply & Q(status=Message.Status.ERROR)),
            up=Count("pk", filter=Q(feedback_rating=Message.Rating.UP)),
            down=Count("pk", filter=Q(feedback_rating=Message.Rating.DOWN)),
        )
    }
    by_hour = dict(
        messages.filter(role=Message.Role.USER)
        .annotate(hour=ExtractHour("created_at"))
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )

    empty = {"messages": 0, "tokens": 0, "replies": 0, "errors": 0, "up": 0, "down": 0}
    rows = [
        {"day": day, "conversations": conversations_by_day.get(day, 0)}
        | {key: message_rows.get(day, empty)[key] for key in empty}
        for day in days
    ]
    totals = {key: sum(row[key] for row in rows) for key in ["conversations", *empty]}
    hours = [(hour, by_hour.get(hour, 0)) for hour in range(24)]
    busiest = sorted((h for h in hours if h[1]), key=lambda h: (-h[1], h[0]))[:3]

    def per_day(title: str, key: str) -> Chart:
        return bar_chart(title, [(row["day"].isoformat(), row[key]) for row in rows])

    return {
        "first_day": first,
        "last_day": today,
        "days": rows,
        "totals": totals,
        "error_rate": _percent(totals["errors"], totals["replies"]),
        "positive_feedback": _percent(totals["up"], totals["up"] + totals["down"]),
        "busiest_hours": [hour for hour, _ in busiest],
        "hours": hours,
        "charts": [
            per_day("Conversations per day", "conversations"),
            per_day("Messages per day", "messages"),
            per_day("Tokens per day", "tokens"),
        ],
        "hours_chart": bar_chart(
            "Visitor messages by hour of day", [(f"{hour:02d}:00", n) for hour, n in hours]
        ),
    }

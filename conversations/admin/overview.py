"""The admin's overview page: the last 30 days in numbers and server-drawn bar charts (SVG,
no script). The numbers come from `selectors.overview_numbers`; this draws them."""

from dataclasses import dataclass

from conversations import selectors
from conversations.models import Assistant
from conversations.selectors.overview import DAY_NUMBERS

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
    """The overview page's context: the days' numbers, their totals and rates, the busiest
    hours of the day, and the charts."""
    numbers = selectors.overview_numbers(days=DAYS, assistant=assistant)
    rows, hours = numbers["days"], numbers["hours"]
    keys = ["conversations", *DAY_NUMBERS]
    totals = {key: sum(row[key] for row in rows) for key in keys}
    busiest = sorted((h for h in hours if h[1]), key=lambda h: (-h[1], h[0]))[:3]

    def per_day(title: str, key: str) -> Chart:
        return bar_chart(title, [(row["day"].isoformat(), row[key]) for row in rows])

    return {
        **numbers,
        "totals": totals,
        "error_rate": _percent(totals["errors"], totals["replies"]),
        "positive_feedback": _percent(totals["up"], totals["up"] + totals["down"]),
        "busiest_hours": [hour for hour, _ in busiest],
        "charts": [
            per_day("Conversations per day", "conversations"),
            per_day("Messages per day", "messages"),
            per_day("Tokens per day", "tokens"),
        ],
        "hours_chart": bar_chart(
            "Visitor messages by hour of day", [(f"{hour:02d}:00", n) for hour, n in hours]
        ),
    }

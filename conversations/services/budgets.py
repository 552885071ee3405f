"""Daily token budgets: a reply reserves before it starts and settles when it ends.

Each assistant has one `DailySpend` row per UTC day, in the database, so every process shares
it and a restart forgets nothing. A reply reserves its `max_tokens` plus an estimate of its
prompt with one conditional UPDATE (it succeeds only if the reservation still fits the
budget), inside the turn's opening transaction; when the reply ends, however it ends, the
reservation is replaced by the tokens the model reported (or, when it reported none, an
estimate from the text). So concurrent replies never overshoot the budget. Spend is counted
for every assistant; a budget of 0 only means nothing is refused.
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import F, Value
from django.db.models.functions import Greatest

from conversations import metrics
from conversations.exceptions import BudgetExhausted
from conversations.models import Assistant, DailySpend, Message
from conversations.selectors.budgets import utc_day

logger = logging.getLogger(__name__)

# Roughly four characters a token for English text with OpenAI's tokenisers; a few more for
# each message's framing. An estimate: the real count replaces it when the model reports it.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
ALERT_PERCENTS = (80, 100)


@dataclass(frozen=True)
class Reservation:
    """Tokens a reply holds of its assistant's spend for the day it started."""

    assistant_id: int
    budget: int
    day: date
    tokens: int
    prompt_estimate: int


def seconds_until_tomorrow(now: datetime) -> int:
    """Seconds until the next UTC midnight, when a new day's budget starts."""
    midnight = datetime.combine(utc_day(now) + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, math.ceil((midnight - now).total_seconds()))


def tokens_estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def prompt_estimate(messages: list[dict[str, str]]) -> int:
    return sum(tokens_estimate(m["content"]) + TOKENS_PER_MESSAGE for m in messages)


def budget_reserve(
    *, assistant: Assistant, max_tokens: int, prompt: int, now: datetime
) -> Reservation:
    """Reserve a reply's tokens of today's spend (call it inside the turn's transaction).

    Raises BudgetExhausted, with the seconds until tomorrow, when they do not fit.
    """
    budget = assistant.daily_token_budget
    day = utc_day(now)
    tokens = max_tokens + prompt
    DailySpend.objects.bulk_create(
        [DailySpend(assistant=assistant, day=day)], ignore_conflicts=True
    )
    spend = DailySpend.objects.filter(assistant=assistant, day=day)
    if budget:
        spend = spend.filter(tokens__lte=budget - tokens)
    if not spend.update(tokens=F("tokens") + tokens):
        raise BudgetExhausted(retry_after=seconds_until_tomorrow(now))
    reservation = Reservation(assistant.pk, budget, day, tokens, prompt)
    _report_share(reservation, slug=assistant.slug)
    return reservation


def budget_exhausted_report(*, assistant: Assistant, now: datetime) -> None:
    """Record that a reply was refused for the budget: the day's 100% line, once."""
    if assistant.daily_token_budget:
        reservation = Reservation(assistant.pk, assistant.daily_token_budget, utc_day(now), 0, 0)
        _report_share(reservation, slug=assistant.slug, refused=True)


def reservation_of(reply: Message, assistant: Assistant) -> Reservation | None:
    """What a `streaming` reply holds, as stored with it (for ending one left by a dead
    process, which knew the prompt's estimate; here it is what is left of the reservation
    once the reply's `max_tokens` is taken off)."""
    if reply.reserved_tokens is None:
        return None
    prompt = max(0, reply.reserved_tokens - assistant.max_output_tokens)
    return Reservation(
        assistant.pk,
        assistant.daily_token_budget,
        utc_day(reply.created_at),
        reply.reserved_tokens,
        prompt,
    )


def budget_settle(reservation: Reservation, reply: Message, *, slug: str) -> None:
    """Replace a reply's reservation with what it spent (call it with the reply's end)."""
    if reply.prompt_tokens is not None or reply.completion_tokens is not None:
        spent = (reply.prompt_tokens or 0) + (reply.completion_tokens or 0)
    else:
        spent = reservation.prompt_estimate + tokens_estimate(reply.content)
    DailySpend.objects.filter(assistant_id=reservation.assistant_id, day=reservation.day).update(
        tokens=Greatest(F("tokens") - reservation.tokens + spent, Value(0))
    )
    _report_share(reservation, slug=slug)


def _report_share(reservation: Reservation, *, slug: str, refused: bool = False) -> None:
    """Log and count, once a day each, the moments a budget is 80% and 100% spent."""
    budget = reservation.budget
    if not budget:
        return
    spend = DailySpend.objects.filter(
        assistant_id=reservation.assistant_id, day=reservation.day
    ).first()
    if spend is None:
        return
    share = 100 if refused else spend.tokens * 100 // budget
    reached = max((p for p in ALERT_PERCENTS if share >= p), default=0)
    if reached <= spend.alerted_percent:
        return
    first = DailySpend.objects.filter(pk=spend.pk, alerted_percent__lt=reached).update(
        alerted_percent=reached
    )
    if first:
        logger.warning(
            "assistant %s has spent %d%% of its daily token budget (%d of %d tokens on %s)",
            slug,
            reached,
            spend.tokens,
            budget,
            reservation.day.isoformat(),
        )
        metrics.BUDGET_ALERTS.labels(slug, str(reached)).inc()

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

# A reservation must not fall short, or concurrent replies could overshoot the budget: a
# token of a byte-level tokeniser (OpenAI's, Llama's) covers at least one byte of UTF-8, so
# a text's bytes bound its tokens from above, in any language (about 4 times the real count
# for English; the real count replaces the estimate when the model reports it). A few more
# for each message's framing.
TOKENS_PER_MESSAGE = 8
ALERT_PERCENTS = (80, 100)


@dataclass(frozen=True, kw_only=True)
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
    """At least as many tokens as the text takes (see above)."""
    return len(text.encode("utf-8", "surrogatepass"))


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
    reservation = Reservation(
        assistant_id=assistant.pk, budget=budget, day=day, tokens=tokens, prompt_estimate=prompt
    )
    _report_share(reservation, slug=assistant.slug)
    return reservation


def budget_exhausted_report(*, assistant: Assistant, now: datetime) -> None:
    """Record that a reply was refused for the budget: the day's 100% line, once."""
    if assistant.daily_token_budget:
        reservation = Reservation(
            assistant_id=assistant.pk,
            budget=assistant.daily_token_budget,
            day=utc_day(now),
            tokens=0,
            prompt_estimate=0,
        )
        _report_share(reservation, slug=assistant.slug, refused=True)


def reservation_of(reply: Message, assistant: Assistant) -> Reservation | None:
    """What a `streaming` reply holds, as stored with it (to end one its process left)."""
    if reply.reserved_tokens is None or reply.reserved_on is None:
        return None
    return Reservation(
        assistant_id=assistant.pk,
        budget=assistant.daily_token_budget,
        day=reply.reserved_on,
        tokens=reply.reserved_tokens,
        prompt_estimate=reply.reserved_prompt_tokens or 0,
    )


def spent_by(reservation: Reservation, reply: Message) -> int:
    """What a reply spent: the usage the model reported, or an estimate from its text."""
    if reply.prompt_tokens is not None or reply.completion_tokens is not None:
        return (reply.prompt_tokens or 0) + (reply.completion_tokens or 0)
    return reservation.prompt_estimate + tokens_estimate(reply.content)


def budget_settle(
    *, reservation: Reservation, reply: Message, slug: str, held: int | None = None
) -> None:
    """Replace what a reply holds of the day's spend (its reservation, unless `held` says
    otherwise) with what it spent; call it with the reply's end."""
    held = reservation.tokens if held is None else held
    DailySpend.objects.filter(assistant_id=reservation.assistant_id, day=reservation.day).update(
        tokens=Greatest(F("tokens") - held + spent_by(reservation, reply), Value(0))
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

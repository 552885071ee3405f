"""Daily token budgets: a reply reserves before it starts and settles when it ends.

Each assistant has one `DailySpend` row per UTC day, in the database, so every process shares
it and a restart forgets nothing. A reply reserves its `max_tokens` plus an estimate of its
prompt with one statement, inside the turn's opening transaction: an INSERT of the day's row
that, when the row exists, adds to it only if the reservation still fits the budget (ON
CONFLICT … DO UPDATE … WHERE). When the reply ends, however it ends, one UPDATE replaces the
reservation with the tokens the model reported (or, when it reported none, an estimate from
the text). So concurrent replies never overshoot the budget. Both statements return the
day's spend, so the 80% and 100% alerts need no read of their own: only crossing a line
costs one statement more. Spend is counted for every assistant; a budget of 0 only means
nothing is refused.
"""

import functools
import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection

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


def reservation_for(
    *, assistant: Assistant, max_tokens: int, prompt: int, now: datetime
) -> Reservation:
    """What a reply of `max_tokens` after a prompt of `prompt` tokens would hold of today's
    spend (`budget_reserve` takes it)."""
    return Reservation(
        assistant_id=assistant.pk,
        budget=assistant.daily_token_budget,
        day=utc_day(now),
        tokens=max_tokens + prompt,
        prompt_estimate=prompt,
    )


def budget_reserve(reservation: Reservation, *, slug: str, now: datetime) -> None:
    """Reserve a reply's tokens of today's spend (call it inside the turn's transaction).

    Raises BudgetExhausted, with the seconds until tomorrow, when they do not fit.
    """
    budget = reservation.budget
    if budget and reservation.tokens > budget:  # not even on a day with nothing spent
        raise BudgetExhausted(retry_after=seconds_until_tomorrow(now))
    day = connection.ops.adapt_datefield_value(reservation.day)
    with connection.cursor() as cursor:
        if budget:
            cursor.execute(
                _sql().reserve_within, [reservation.assistant_id, day, reservation.tokens, budget]
            )
        else:
            cursor.execute(_sql().reserve, [reservation.assistant_id, day, reservation.tokens])
        row = cursor.fetchone()
    if row is None:
        raise BudgetExhausted(retry_after=seconds_until_tomorrow(now))
    _report_share(reservation, slug=slug, spent=row[0], alerted=row[1])


def budget_exhausted_report(*, assistant: Assistant, now: datetime) -> None:
    """Record that a reply was refused for the budget: the day's 100% line, once."""
    if assistant.daily_token_budget:
        _alert_once(
            assistant_id=assistant.pk,
            day=utc_day(now),
            percent=100,
            slug=assistant.slug,
            budget=assistant.daily_token_budget,
        )


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
    change = spent_by(reservation, reply) - held
    day = connection.ops.adapt_datefield_value(reservation.day)
    with connection.cursor() as cursor:
        cursor.execute(_sql().settle, [change, change, reservation.assistant_id, day])
        row = cursor.fetchone()
    if row is not None:
        _report_share(reservation, slug=slug, spent=row[0], alerted=row[1])


def _report_share(reservation: Reservation, *, slug: str, spent: int, alerted: int) -> None:
    """Log and count, once a day each, the moments a budget is 80% and 100% spent (`spent`
    and `alerted`: the day's row as the statement that changed it returned it)."""
    budget = reservation.budget
    if not budget:
        return
    share = spent * 100 // budget
    reached = max((p for p in ALERT_PERCENTS if share >= p), default=0)
    if reached > alerted:
        _alert_once(
            assistant_id=reservation.assistant_id,
            day=reservation.day,
            percent=reached,
            slug=slug,
            budget=budget,
        )


def _alert_once(*, assistant_id: int, day: date, percent: int, slug: str, budget: int) -> None:
    """Raise the day's alerted share to `percent`; the one process that does logs it."""
    # An upsert: a reply refused on a day with nothing spent yet (one that does not fit the
    # whole budget) has the 100% line reported too.
    with connection.cursor() as cursor:
        cursor.execute(
            _sql().alert, [assistant_id, connection.ops.adapt_datefield_value(day), percent]
        )
        row = cursor.fetchone()
    if row is not None:
        logger.warning(
            "assistant %s has spent %d%% of its daily token budget (%d of %d tokens on %s)",
            slug,
            percent,
            row[0],
            budget,
            day.isoformat(),
        )
        metrics.BUDGET_ALERTS.labels(slug, str(percent)).inc()


@dataclass(frozen=True)
class _Statements:
    reserve: str  # (assistant, day, tokens): the row with the tokens added
    reserve_within: str  # (assistant, day, tokens, budget): no row when they do not fit
    settle: str  # (change, change, assistant, day): the row, the change applied
    alert: str  # (assistant, day, percent): the row's tokens, if this raised its share


@functools.cache
def _sql() -> _Statements:
    """The budget's statements, in raw SQL: the ORM has no upsert that returns the row, nor
    an UPDATE … RETURNING. Only names from the model's options are put in the text (quoted);
    every value is a parameter. PostgreSQL and SQLite (3.35+) read them alike."""
    quote = connection.ops.quote_name
    meta = DailySpend._meta
    table = quote(meta.db_table)
    assistant, day, tokens, alerted = (
        quote(meta.get_field(name).column)
        for name in ("assistant", "day", "tokens", "alerted_percent")
    )
    upsert = (
        f"INSERT INTO {table} ({assistant}, {day}, {tokens}, {alerted}) "  # noqa: S608
        f"VALUES (%s, %s, {{tokens}}, {{alerted}}) ON CONFLICT ({assistant}, {day}) DO UPDATE "
    )
    add = (
        upsert.format(tokens="%s", alerted="0")
        + f"SET {tokens} = {table}.{tokens} + EXCLUDED.{tokens}"
    )
    returning = f" RETURNING {tokens}, {alerted}"
    return _Statements(
        reserve=add + returning,
        reserve_within=add + f" WHERE {table}.{tokens} + EXCLUDED.{tokens} <= %s" + returning,
        settle=(
            f"UPDATE {table} SET {tokens} = CASE WHEN {tokens} + %s > 0 "  # noqa: S608
            f"THEN {tokens} + %s ELSE 0 END WHERE {assistant} = %s AND {day} = %s" + returning
        ),
        alert=(
            upsert.format(tokens="0", alerted="%s")
            + f"SET {alerted} = EXCLUDED.{alerted} WHERE {table}.{alerted} < EXCLUDED.{alerted}"
            f" RETURNING {tokens}"
        ),
    )

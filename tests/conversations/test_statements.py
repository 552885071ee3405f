"""The regression guard on a chat turn's database cost (issue 12): at most 6 statements and
2 connection check-outs a turn, the daily budget's statements counted apart.

A turn runs as the views run it (`services.message_post`: the admission gate, the opening
step, the model, the ending step), live against the fake model, with a budget that does not
bind; its database steps run in their thread pool, where tests/statements.py counts them.
bench/statements.py prints the same figures for PostgreSQL.
"""

import pytest

from conversations import policy, services
from conversations.models import Message
from tests.statements import database_work

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_executor_connections"),
]

VISITOR = policy.Visitor(
    origin="https://shop.example",
    own_host="testserver",
    ip="203.0.113.7",
    ip_hash=policy.ip_hash("203.0.113.7"),
)


@pytest.fixture
async def budgeted(session):
    session.assistant.daily_token_budget = 1_000_000  # spent and reserved, never binding
    await session.assistant.asave()
    return session


async def turn(session, content: str) -> Message:
    _, reply = await services.message_post(
        visitor=VISITOR, public_id=session.public_id, content=content
    )
    assert reply.status == Message.Status.COMPLETE
    return reply


async def test_a_turn_costs_at_most_6_statements_and_2_checkouts(fake_llm, budgeted):
    await turn(budgeted, "hello")  # the process's first turn also stores its first beat

    with database_work() as work:
        await turn(budgeted, "and again")

    shown = work.summary()
    # The session with its assistant, the lock that takes the seqs, the history, both
    # messages in one INSERT, the reply's final UPDATE.
    assert len(work.statements) <= 6, shown
    assert len(work.budget) == 2, shown  # reserve and settle: no alert line crossed
    assert work.heartbeat == [], shown  # beaten moments ago: not again
    assert work.checkouts <= 2
    assert work.transactions <= 2  # the opening and the ending


async def test_a_turn_in_a_longer_conversation_costs_no_more(fake_llm, budgeted):
    for number in range(6):  # past the assistant's context of 10 messages
        await turn(budgeted, f"question {number}")

    with database_work() as work:
        await turn(budgeted, "one more")

    assert len(work.statements) <= 6, work.summary()
    assert work.checkouts <= 2

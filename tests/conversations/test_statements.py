"""The regression guard on a chat turn's database cost (issue 12): at most 6 statements and
2 connection check-outs a turn, the daily budget's statements counted apart.

A turn runs as the views run it (`services.message_post`: the admission gate, the opening
step, the model, the ending step), live against the fake model, with a budget that does not
bind; its database steps run in their thread pool, where tests/statements.py counts them.
bench/statements.py prints the same figures for PostgreSQL.
"""

import dataclasses
import time

import jwt
import pytest
from asgiref.sync import sync_to_async

from conversations import policy, services
from conversations.models import Assistant, Message
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


async def test_a_signed_in_visitors_turn_costs_no_more(fake_llm, budgeted):
    # The ownership check rides in the conversation's lookup (a WHERE on the visitor's sub),
    # and the name and email from the token in the UPDATE that takes the seqs.
    assistant = budgeted.assistant
    assistant.identity_mode = Assistant.IdentityMode.OPTIONAL
    await assistant.asave()
    await sync_to_async(services.identity_secret_rotate)(assistant=assistant)
    budgeted.visitor_sub = "user-42"
    await budgeted.asave()
    claims = {"sub": "user-42", "aud": assistant.slug, "exp": int(time.time()) + 600}
    token = jwt.encode({**claims, "name": "Ada"}, assistant.identity_secret, algorithm="HS256")
    signed_in = dataclasses.replace(VISITOR, token=token, claimed_sub="user-42")
    await services.message_post(visitor=signed_in, public_id=budgeted.public_id, content="hi")

    with database_work() as work:
        _, reply = await services.message_post(
            visitor=signed_in, public_id=budgeted.public_id, content="again"
        )

    assert reply.status == Message.Status.COMPLETE
    assert len(work.statements) <= 6, work.summary()
    assert work.checkouts <= 2
    await budgeted.arefresh_from_db()
    assert budgeted.visitor_name == "Ada"

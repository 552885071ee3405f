"""What a chat turn costs PostgreSQL: statements, transactions and connection check-outs.

    .venv/bin/python bench/statements.py            # prints one JSON object

Creates a database of its own (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/chatkit_bench_statements), migrates it, runs a few turns
through the service entry point (`services.message_post`, live mode, against the fake model
of tests/fakes, with a daily token budget that does not bind), counts each one with
tests/statements.py (the helper the regression guard uses), prints the last turn's figures
and drops the database. Budget statements are counted apart; the heartbeat's too (once a
beat per process, not per turn: the first turn may pay it).
"""

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/chatkit_bench_statements"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--turns", type=int, default=5)
    return parser.parse_args()


def database_recreate(url: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def configure(url: str, fake_url: str) -> None:
    # Production settings, as an operator runs them, with throwaway values.
    os.environ.update(
        DJANGO_SETTINGS_MODULE="chatkit.settings",
        DATABASE_URL=url,
        DEBUG="false",
        CHATKIT_ENV_FILE="",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="localhost",
        CORS_ALLOWED_ORIGINS="https://www.example.com",
        OPENAI_API_KEY="bench-key",
        OPENAI_BASE_URL=fake_url,
        OPENAI_MODEL="fake-model",
        OPENAI_MAX_RETRIES="0",
    )
    os.environ.pop("REDIS_URL", None)  # the rate limits count in memory: no database work
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


async def turns(count: int) -> list[dict]:
    from asgiref.sync import sync_to_async

    from conversations import policy, services
    from conversations.models import Assistant, Session
    from tests.statements import database_work

    def conversation() -> Session:
        assistant, _ = Assistant.objects.update_or_create(
            slug="default",
            defaults={"name": "Bench", "system_prompt": "Help.", "daily_token_budget": 10**9},
        )
        return Session.objects.create(assistant=assistant)

    session = await sync_to_async(conversation)()
    visitor = policy.Visitor(origin="", own_host="localhost", ip="127.0.0.1", ip_hash="bench")
    figures = []
    for number in range(count):
        with database_work() as work:
            _, reply = await services.message_post(
                visitor=visitor, public_id=session.public_id, content=f"question {number}"
            )
        assert reply.status == "complete", reply.status
        figures.append(
            {
                "statements_per_turn": len(work.statements),
                "budget_statements_per_turn": len(work.budget),
                "heartbeat_statements": len(work.heartbeat),
                "transactions_per_turn": work.transactions,
                "checkouts_per_turn": work.checkouts,
                "statements": work.summary()["statements"],
                "budget_statements": work.summary()["budget"],
            }
        )
    return figures


def main() -> None:
    args = parse_args()
    from tests.fakes.openai_server import FakeOpenAI

    database_recreate(args.url)
    try:
        with FakeOpenAI() as fake:
            configure(args.url, fake.base_url)
            from django.core.management import call_command
            from django.db import connections

            call_command("migrate", verbosity=0, interactive=False)
            figures = asyncio.run(turns(args.turns))
            connections.close_all()
            connections["default"].close_pool()
    finally:
        database_recreate(args.url, drop_only=True)
    last = figures[-1]  # the first turn may also beat the heartbeat
    last["turns"] = args.turns
    last["first_turn_heartbeat_statements"] = figures[0]["heartbeat_statements"]
    print(json.dumps(last, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

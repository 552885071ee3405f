"""The purge benchmark: 100,000 conversations and 1,000,000 messages on PostgreSQL.

    make bench-purge                       # or: .venv/bin/python bench/purge.py --help

1. Creates (if missing) and migrates a database of its own, BENCH_DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/chatkit_bench), and empties its conversations.
2. Fills it server-side (INSERT ... SELECT generate_series; reproducible, setseed) with
   conversations of 10 messages each, support-chat text of varied length, 90% of them idle
   for longer than 30 days.
3. Times the admin's search over message text (the SQL the Session changelist runs for
   `?q=TERM`) without the trigram indexes, builds them, and times it again.
4. Runs `manage.py purge_sessions --older-than 30d` as a child process and reports its wall
   time and peak memory (the child's max RSS, from wait4).

Not part of the test suite: it takes a few minutes. Every run starts from an empty database.
"""

import argparse
import importlib
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/chatkit_bench"
GOAL_SECONDS, GOAL_MB = 60, 150

_VOCABULARY = (
    "hello hi thanks please order delivery shipping refund return exchange invoice payment card "
    "account password login email address parcel tracking number warehouse courier delayed late "
    "damaged broken missing wrong size colour color blue black white red green small medium large "
    "jacket shoes shirt trousers dress bag watch phone charger cable laptop screen battery "
    "warranty guarantee repair replacement voucher discount code coupon price total tax receipt "
    "subscription cancel renew monthly yearly plan upgrade downgrade store opening hours weekend "
    "monday tuesday wednesday thursday friday today tomorrow yesterday week month customer "
    "support team manager agent help question answer problem issue error message website app "
    "checkout basket cart stock available sold out restock notify newsletter privacy data delete "
    "please could you would can I we our your my the a an and or but with without for from to of "
    "in on at by about after before when where why how what which is are was were be been have "
    "has had do does did not no yes sure certainly sorry unfortunately happy glad understand "
    "check update confirm arrive arrived send sent receive received pay paid charged twice"
)
WORDS = _VOCABULARY.split()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--messages-per-session", type=int, default=10)
    parser.add_argument("--idle-share", type=float, default=0.9, help="share older than 30 days")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each search")
    parser.add_argument("--explain", action="store_true", help="print the search query plans")
    parser.add_argument(
        "--no-purge", action="store_true", help="stop before the purge, keeping the full dataset"
    )
    return parser.parse_args()


def setup_django(url: str) -> None:
    """Point this process (and the purge child, which inherits it) at the bench database,
    with production settings (DEBUG off), as an operator's cron job runs."""
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="chatkit.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="localhost",
        CORS_ALLOWED_ORIGINS="https://bench.invalid",
        CHATKIT_ENV_FILE="",
        REDIS_URL="",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_database(url: str) -> None:
    """Create the bench database if it does not exist (through the server's `postgres` db)."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to empty {name!r}: the bench database's name must contain 'bench'")
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


SEARCH_INDEX_MIGRATIONS = ["0004_message_search_index", "0005_title_search_index"]


def search_index_migrations() -> list:
    return [
        importlib.import_module(f"conversations.migrations.{name}")
        for name in SEARCH_INDEX_MIGRATIONS
    ]


def set_search_index(present: bool) -> None:
    """Drop or (re)build the migrations' trigram indexes, with the migrations' own code."""
    from django.db import connection

    for migration in search_index_migrations():
        [build] = migration.Migration.operations  # a RunPython: build, and drop to reverse it
        with connection.schema_editor(atomic=False) as editor:
            (build.code if present else build.reverse_code)(None, editor)


def sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def fill(args: argparse.Namespace) -> dict:
    """Empty the conversations and fill them again, all server-side."""
    from conversations.models import Assistant

    assistant = Assistant.objects.get(slug="default")
    sql("TRUNCATE conversations_message, conversations_session RESTART IDENTITY")
    sql("SELECT setseed(0.42)")
    # 50,000 fragments of 4 to 26 words; messages are made of one (visitor) or two (reply),
    # picked by a hash of (session, seq), so text varies and repeats like real chats do.
    sql("DROP TABLE IF EXISTS bench_fragment")
    sql(
        "CREATE UNLOGGED TABLE bench_fragment AS "
        "SELECT i, array_to_string(ARRAY("
        "  SELECT (%s::text[])[1 + floor(random() * %s)::int]"
        "  FROM generate_series(1, 4 + i %% 23) WHERE i >= 0), ' ') AS text "
        "FROM generate_series(0, 49999) AS i",
        [WORDS, len(WORDS)],
    )
    sql("CREATE UNIQUE INDEX ON bench_fragment (i)")
    idle_per_10 = round(args.idle_share * 10)
    sql(
        """
        INSERT INTO conversations_session
            (public_id, assistant_id, created_at, last_activity_at, origin, user_agent, ip_hash,
             metadata, title)
        SELECT substr(translate(encode(sha256(('bench-' || s)::bytea), 'base64'), '+/', '-_'),
                      1, 32),
               %(assistant)s, active - (s %% 120) * interval '1 minute', active,
               'https://shop.example', 'Mozilla/5.0 (bench)', md5(s::text), '{}', ''
        FROM generate_series(1, %(sessions)s) AS s,
             LATERAL (SELECT CASE WHEN (s * 7) %% 10 < %(idle)s
                    THEN now() - interval '31 days' - (s %% 335) * interval '1 day'
                    ELSE now() - (s %% 29) * interval '1 day' END
                    - (s %% 1440) * interval '1 minute' AS active) AS a
        """,
        {"assistant": assistant.pk, "sessions": args.sessions, "idle": idle_per_10},
    )
    sql(
        """
        INSERT INTO conversations_message
            (session_id, seq, role, content, created_at, status, model, prompt_tokens,
             completion_tokens, ttft_ms, duration_ms, finish_reason, error_code,
             feedback_rating, feedback_comment)
        SELECT s.id, m.seq, CASE WHEN visitor THEN 'user' ELSE 'assistant' END,
               CASE WHEN visitor THEN initcap(f1.text) || '?'
                    || CASE WHEN (s.id + m.seq) %% 50 = 1
                            THEN ' My order is A-' || lpad(((s.id * 7919) %% 1000000)::text, 6, '0')
                            ELSE '' END
                    ELSE initcap(f1.text) || '. ' || initcap(f2.text) || '.' END,
               s.created_at + m.seq * interval '20 seconds',
               CASE WHEN NOT visitor AND m.seq = %(last)s AND s.id %% 1000 = 0
                    THEN 'streaming' ELSE 'complete' END,
               CASE WHEN visitor THEN '' ELSE 'gpt-4o-mini' END,
               CASE WHEN visitor THEN NULL ELSE 200 + m.seq * 40 END,
               CASE WHEN visitor THEN NULL ELSE 40 + (s.id %% 200) END,
               CASE WHEN visitor THEN NULL ELSE 300 + (s.id %% 700) END,
               CASE WHEN visitor THEN NULL ELSE 1500 + (s.id %% 3000) END,
               CASE WHEN visitor THEN '' ELSE 'stop' END, '',
               CASE WHEN NOT visitor AND s.id %% 20 = 0 THEN 'up'
                    WHEN NOT visitor AND s.id %% 53 = 0 THEN 'down' ELSE '' END, ''
        FROM conversations_session s
        CROSS JOIN generate_series(1, %(last)s) AS m(seq)
        CROSS JOIN LATERAL (SELECT m.seq %% 2 = 1 AS visitor, (s.id * 16 + m.seq) AS k) AS v
        JOIN bench_fragment f1 ON f1.i = (v.k * 7919) %% 50000
        JOIN bench_fragment f2 ON f2.i = (v.k * 104729) %% 50000
        """,
        {"last": args.messages_per_session},
    )
    sql(
        "UPDATE conversations_session s SET title = left(m.content, 100) "
        "FROM conversations_message m WHERE m.session_id = s.id AND m.seq = 1"
    )
    sql("DROP TABLE bench_fragment")
    sql("VACUUM ANALYZE conversations_session")
    sql("VACUUM ANALYZE conversations_message")
    (sessions, idle, messages, text_mb) = sql(
        "SELECT (SELECT count(*) FROM conversations_session),"
        " (SELECT count(*) FROM conversations_session"
        "  WHERE last_activity_at < now() - interval '30 days'),"
        " count(*), sum(length(content)) / 1e6 FROM conversations_message"
    )[0]
    return {"sessions": sessions, "idle": idle, "messages": messages, "text_mb": float(text_mb)}


def search_terms() -> list[tuple[str, str]]:
    """A rare term (one order number), a common word, and a term found nowhere."""
    (order,) = sql(
        "SELECT substring(content from 'A-[0-9]{6}') FROM conversations_message "
        "WHERE content LIKE '% A-%' "
        "AND session_id > (SELECT max(id) / 2 FROM conversations_session) ORDER BY id LIMIT 1"
    )[0]
    return [(order, "rare: one order number"), ("refund", "common word"), ("xqzw", "no match")]


def session_admin():
    """The Session admin as registered; with `messages__content` searched, as issue 4 wants."""
    from django.contrib import admin

    from conversations.models import Session

    registered = admin.site._registry[Session]
    if "messages__content" in registered.search_fields:
        return registered, "the registered SessionAdmin"
    wanted = ["=public_id", "title", "messages__content"]
    extended = type("BenchSessionAdmin", (type(registered),), {"search_fields": wanted})
    return extended(Session, admin.site), f"SessionAdmin with search_fields={wanted}"


def time_search(model_admin, user, term: str, runs: int, explain: bool) -> dict:
    """Run the changelist for `?q=term` as Django builds it; time it, explain its queries."""
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    indexes = [migration.INDEX for migration in search_index_migrations()]
    timings, captured = [], []
    for _run in range(runs):
        request = RequestFactory().get("/admin/conversations/session/", {"q": term})
        request.user = user
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            changelist = model_admin.get_changelist_instance(request)
            list(changelist.result_list)
            timings.append(time.perf_counter() - started)
        captured = [q["sql"] for q in queries.captured_queries]
    uses_index, plans = False, []
    for query in captured:
        if "LIKE" not in query:
            continue
        plan = "\n".join(row[0] for row in sql("EXPLAIN (ANALYZE, COSTS OFF) " + query))
        uses_index |= any(index in plan for index in indexes)
        plans.append((query, plan))
    if explain:
        for query, plan in plans:
            print(f"\n--- {query}\n{plan}")
    return {
        "ms": statistics.median(timings) * 1000,
        "min_ms": min(timings) * 1000,
        "max_ms": max(timings) * 1000,
        "matches": changelist.result_count,
        "queries": len(captured),
        "uses_index": uses_index,
    }


def run_purge(args: argparse.Namespace) -> dict:
    """`manage.py purge_sessions` in a child process: wall time, max RSS, its summary line."""
    command = [
        sys.executable,
        "manage.py",
        "purge_sessions",
        "--older-than",
        "30d",
        "--batch-size",
        str(args.batch_size),
    ]
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        # Our own fixed command line, no shell.
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        # wait4 reports this child's own peak memory, not that of every child we ever had.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().splitlines()
    if child.returncode != 0:
        sys.exit("purge_sessions failed:\n" + "\n".join(lines[-20:]))
    return {
        "command": " ".join(["manage.py", *command[2:]]),
        "seconds": wall,
        "max_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "batches": sum(line.startswith("batch ") for line in lines),
        "summary": lines[-1],
    }


def print_search_table(terms, without: dict, with_index: dict, runs: int) -> None:
    print(f"\nadmin search over message text (changelist SQL, median of {runs} runs)")
    print(f"  {'term':<24} {'matches':>8} {'no index':>10} {'trigram indexes':>16}  index used")
    for term, label in terms:
        a, b = without[term], with_index[term]
        print(
            f"  {term + ' (' + label.split(':')[0] + ')':<24} {b['matches']:>8,} "
            f"{a['ms']:>8.0f} ms {b['ms']:>13.0f} ms  {'yes' if b['uses_index'] else 'NO'}"
        )


def main() -> None:
    args = parse_args()
    ensure_database(args.url)
    setup_django(args.url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    server = sql("SHOW server_version")[0][0]
    print(f"PostgreSQL {server}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    set_search_index(present=False)  # loads faster without it, and is measured without first
    started = time.perf_counter()
    data = fill(args)
    fill_seconds = time.perf_counter() - started
    print(
        f"filled in {fill_seconds:.1f} s: {data['sessions']:,} conversations "
        f"({data['idle']:,} idle > 30 days), {data['messages']:,} messages, "
        f"{data['text_mb']:.0f} MB of text"
    )

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    model_admin, which = session_admin()
    print(f"admin search through {which}")
    terms = search_terms()
    without = {term: time_search(model_admin, user, term, args.runs, False) for term, _ in terms}
    started = time.perf_counter()
    set_search_index(present=True)
    index_seconds = time.perf_counter() - started
    sql("ANALYZE conversations_message")
    sql("ANALYZE conversations_session")
    index_mb = sum(
        sql("SELECT pg_relation_size(%s) / 1e6", [migration.INDEX])[0][0]
        for migration in search_index_migrations()
    )
    print(f"trigram indexes built in {index_seconds:.1f} s ({float(index_mb):.0f} MB)")
    with_index = {
        term: time_search(model_admin, user, term, args.runs, args.explain) for term, _ in terms
    }

    print_search_table(terms, without, with_index, args.runs)
    if args.no_purge:
        return
    purge = run_purge(args)
    left = sql(
        "SELECT (SELECT count(*) FROM conversations_session),"
        " (SELECT count(*) FROM conversations_message)"
    )[0]

    print(f"\n{purge['command']}")
    print(f"  {purge['summary']}")
    print(f"  batches           {purge['batches']}")
    print(f"  wall time         {purge['seconds']:.1f} s   (goal < {GOAL_SECONDS} s)")
    print(f"  peak memory (RSS) {purge['max_rss_mb']:.0f} MB  (goal < {GOAL_MB} MB)")
    print(f"  left              {left[0]:,} conversations, {left[1]:,} messages")
    if purge["seconds"] >= GOAL_SECONDS or purge["max_rss_mb"] >= GOAL_MB:
        sys.exit("goal missed")


if __name__ == "__main__":
    main()

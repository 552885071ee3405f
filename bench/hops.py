"""Thread hops and CPU per request, in process, through the ASGI application.

    .venv/bin/python bench/hops.py [--requests 2000] [--rounds 3]

Sends requests straight to `chatkit.asgi.application` (no server, no socket), counting
`sync_to_async` calls and the process's CPU time (`time.process_time()`, every thread) per
request: `GET /health` and `GET /api/v1/assistants/default`. Production settings (DEBUG off)
on a throwaway SQLite database; the HTTPS redirect and rate limits off. Prints one line per
route and round, then min/median/max of the rounds.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROUTES = ["/health", "/api/v1/assistants/default"]


def configure() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    database = Path(tempfile.gettempdir()) / f"chatkit-hops-{os.getpid()}.sqlite3"
    os.environ.update(
        CHATKIT_ENV_FILE="",
        DEBUG="false",
        SECRET_KEY="bench-secret-key-" + "x" * 50,
        ALLOWED_HOSTS="testserver",
        CORS_ALLOWED_ORIGINS="https://shop.example",
        DATABASE_URL=f"sqlite:///{database}",
        SECURE_SSL_REDIRECT="false",
        CHATKIT_RATELIMIT_ENABLED="false",
        CHATKIT_HEARTBEAT_SECONDS="3600",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatkit.settings"


def scope(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"origin", b"https://shop.example")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def request(application, path: str) -> int:
    sent: list[dict] = []
    asked = asyncio.Event()

    async def receive() -> dict:
        if not asked.is_set():
            asked.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # never disconnects; Django cancels this when done
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await application(scope(path), receive, send)
    return sent[0]["status"]


async def main(requests: int, rounds: int) -> None:
    from asgiref.sync import SyncToAsync

    from chatkit.asgi import application

    hops = 0
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        nonlocal hops
        hops += 1
        return await original(self, *args, **kwargs)

    for path in ROUTES:  # warm up, and check the route answers
        assert await request(application, path) == 200, path
    results: dict[str, list[float]] = {path: [] for path in ROUTES}
    for path in ROUTES:
        SyncToAsync.__call__ = counted
        hops = 0
        await request(application, path)
        SyncToAsync.__call__ = original
        print(f"{path}: {hops} sync_to_async hops per request")
    for round_ in range(rounds):
        for path in ROUTES:
            started = time.process_time()
            for _ in range(requests):
                await request(application, path)
            per_request = (time.process_time() - started) / requests * 1000
            results[path].append(per_request)
            print(f"round {round_ + 1} {path}: {per_request:.3f} ms CPU per request")
    for path, figures in results.items():
        print(
            f"{path}: min {min(figures):.3f} / median {statistics.median(figures):.3f} / "
            f"max {max(figures):.3f} ms CPU per request"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    configure()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    try:
        asyncio.run(main(arguments.requests, arguments.rounds))
    finally:
        database = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)

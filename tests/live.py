"""Real processes for tests that need production's stack: uvicorn serving the project, and
the Redis and PostgreSQL databases such servers may share.

A LiveServer serves the suite's own test database unless told otherwise, so what it stores the
test can read back (from a `transactional_db` test: an open test transaction would hide the
server's writes, and on SQLite block them).
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection
from psycopg import sql

from tests.helpers import ROOT

# Where a test finds PostgreSQL when the suite itself runs on SQLite (CI starts it for both).
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database this test run uses (the test database, not the real one)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def unavailable(reason: str) -> None:
    """Skip a test for want of a server it needs; in CI, which must run every test, fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run every test", pytrace=False)
    pytest.skip(reason)


class RedisProcess:
    """A Redis server of the test's own, on a free port, that the test may stop."""

    def __init__(self):
        if shutil.which("redis-server") is None:
            unavailable("redis-server not found (apt-get install -y redis-server)")
        self.url = f"redis://127.0.0.1:{free_port()}/0"
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", port, "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in self.process.stdout:  # it says when it listens
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.communicate(timeout=10)


class ScratchPostgres:
    """An empty PostgreSQL database of the test's own, until `drop()`: on the suite's
    PostgreSQL server when the suite runs on one, else on LOCAL_POSTGRES."""

    def __init__(self, prefix: str):
        on_postgres = "postgresql" in connection.settings_dict["ENGINE"]
        server = database_url().rsplit("/", 1)[0] if on_postgres else LOCAL_POSTGRES
        self.name = f"{prefix}_{os.getpid()}"
        self.url = f"{server}/{self.name}"
        try:
            self._server = psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            unavailable(f"no PostgreSQL at {server}: {exc}".strip())
        self._server.execute(self._statement("DROP DATABASE IF EXISTS {} WITH (FORCE)"))
        self._server.execute(self._statement("CREATE DATABASE {}"))

    def _statement(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(sql.Identifier(self.name))

    def migrate(self) -> None:
        """`manage.py migrate` on this database, as an operator runs it."""
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": self.url}
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def drop(self) -> None:
        # FORCE: a server process killed by the test may leave its connections behind.
        self._server.execute(self._statement("DROP DATABASE {} WITH (FORCE)"))
        self._server.close()


UVICORN = ["-m", "uvicorn", "chatkit.asgi:application", "--lifespan", "off", "--no-proxy-headers"]
SERVE = ["manage.py", "serve"]  # the production command


class LiveServer:
    """`uvicorn chatkit.asgi:application` (or `command`, e.g. SERVE) on a free port, until
    `stop()`; `options` add to its command line."""

    def __init__(
        self, command: list[str] | None = None, *, options: tuple[str, ...] = (), **env: str
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self._printed = threading.Condition()
        self._ready = threading.Event()
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                *(command or UVICORN),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *options,
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(30) or not self._listening(30):
            self.stop()
            raise RuntimeError("the server did not start:\n" + "".join(self.output))

    def _listening(self, timeout: float) -> bool:
        """Whether the server accepts connections within `timeout` seconds. Under `--workers`
        the parent says it runs once it has bound the socket; it listens only once a worker
        has started, and nothing tells when: connections are refused until then."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except ConnectionRefusedError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(0.05)  # returns at once if the server exits instead
        return False

    def _drain(self) -> None:
        # Read everything the server prints (so its pipe never fills); its own start-up line
        # tells us it listens, no polling needed.
        for line in self.process.stdout:
            with self._printed:
                self.output.append(line)
                self._printed.notify_all()
            if "Uvicorn running on" in line:
                self._ready.set()
        self._ready.set()  # it exited; the caller sees poll() is not None

    def wait_for_output(self, text: str, timeout: float = 10, count: int = 1) -> bool:
        """Block until the server has printed `count` lines containing `text`."""
        with self._printed:
            return self._printed.wait_for(
                lambda: sum(text in line for line in self.output) >= count, timeout
            )

    def threads(self) -> int:
        """How many threads the server process runs now."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Threads:"))[8:])

    def open_files(self, path: str) -> int:
        """How many of the server's file descriptors are open on `path`."""
        count = 0
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                count += os.readlink(fd) == path
        return count

    def temp_files(self) -> int:
        """How many temporary files the server holds open (unlinked ones, as Python makes)."""
        count, temp_dir = 0, tempfile.gettempdir() + "/"
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                target = os.readlink(fd)
                count += target.startswith(temp_dir) and target.endswith(" (deleted)")
        return count

    def signal(self, sig: int) -> None:
        """Send `sig` to the server's process (its parent process, with workers)."""
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- Talking to a live server as a visitor ------------------------------------------------


def new_session(server, assistant: str | None = None, **headers: str) -> httpx.Response:
    body = {"assistant": assistant} if assistant else {}
    return httpx.post(f"{server.url}/api/v1/sessions", json=body, headers=headers, timeout=30)


def session_id(server, assistant: str | None = None) -> str:
    response = new_session(server, assistant)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def send(server, session: str, content: str = "hi") -> httpx.Response:
    path = f"{server.url}/api/v1/sessions/{session}/messages"
    return httpx.post(path, json={"content": content}, timeout=30)

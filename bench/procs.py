"""The processes a bench run owns: the fake model, ChatKit under `manage.py serve`, the Node
peer; their databases; and their own CPU and memory accounting from /proc.

Every process is started in a process group of its own and stopped with it (SIGTERM, then
SIGKILL), by `stop_all()` at exit, on Ctrl-C and on errors. Readiness is polled, never slept.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOGS = ROOT / "bench" / "results" / "logs"  # each process's output, the last run's

_running: list[Process] = []


def clear_logs() -> None:
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)


def raise_fd_limit() -> int:
    """Raise this process's soft file-descriptor limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child in its own process group, its output in a log file under LOGS."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path = ROOT, env: dict | None = None):
        self.name = name
        self.log = LOGS / f"{name}.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: stopped with its children
                preexec_fn=raise_fd_limit,
            )
        self.pid = self.popen.pid
        _running.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 15) -> None:
        if self in _running:
            _running.remove(self)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Whatever is left of the group (workers of a parent killed first) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def stop_all() -> None:
    for process in reversed(list(_running)):
        process.stop()


def _stop_on_signal(signum, frame) -> None:
    stop_all()
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM stops the run like Ctrl-C does: children first, then exit."""
    signal.signal(signal.SIGTERM, _stop_on_signal)


def wait_until_ready(process: Process, url: str, timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.05)  # a polling interval, not a synchronisation
    raise RuntimeError(f"{process.name} not ready at {url} after {timeout} s:\n{process.tail()}")


# --- /proc accounting ---------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (its own threads, not its children)."""
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return 0.0


def status_field(pid: int, name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    return status_field(pid, "VmRSS") * 1024


# --- The fake model -----------------------------------------------------------------------


class Fake:
    """tests/fakes/openai_server.py as a process of its own; knobs change over HTTP."""

    def __init__(self, **knobs):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        argv = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(self.port)]
        argv += ["--max-records", "100"]
        self.process = Process("fake", argv)
        wait_until_ready(self.process, f"{self.url}/v1/models")
        self.configure(**knobs)

    def configure(self, **knobs) -> None:
        defaults = {"ttft": 0.0, "itl": 0.0, "reply_tokens": None}
        request = urllib.request.Request(
            f"{self.url}/_fake/knobs",
            data=json.dumps({**defaults, **knobs}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.stop()


# --- PostgreSQL and Redis -----------------------------------------------------------------


def create_database(name: str) -> str:
    import psycopg
    from psycopg import sql

    assert "bench" in name, "bench databases are dropped: their names say bench"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{POSTGRES}/{name}"


def drop_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- ChatKit ------------------------------------------------------------------------------

# Names the upstream HTTP pool setting may have, in the tree being measured (the app does not
# have it yet at the time of writing): whichever its .env.example lists is set high.
UPSTREAM_POOL_SETTING = re.compile(
    r"^#?\s*((?:OPENAI|CHATKIT)_[A-Z_]*(?:CONNECTIONS|POOL)[A-Z_]*)=", re.M
)

# Limits on, high enough not to bind in any scenario; budgets likewise.
HIGH_LIMITS = {
    "CHATKIT_RATELIMIT_ENABLED": "true",
    "CHATKIT_RATELIMIT_SESSIONS_PER_IP": "1000000/h",
    "CHATKIT_RATELIMIT_MESSAGES_PER_SESSION": "1000000/m",
    "CHATKIT_RATELIMIT_MESSAGES_PER_IP": "1000000/h",
    "CHATKIT_RATELIMIT_STREAMS_PER_IP": "100000",
}
DAILY_TOKEN_BUDGET = 2_000_000_000  # a PositiveIntegerField; never reached by a run
MAX_OUTPUT_TOKENS = 4000  # over the 2,000-token reply, which the fake would cut at max_tokens


class ChatKit:
    """One ChatKit tree (this one, or a baseline commit's worktree) with a database and a
    Redis db of its own, served like production by `manage.py serve`."""

    def __init__(self, name: str, tree: Path, *, database: str, redis_db: int, fake: Fake):
        self.name = name
        self.tree = tree
        self.database = database
        self.redis_url = f"{REDIS}/{redis_db}"
        self.fake = fake
        self.process: Process | None = None
        self.workers = 0
        self.secret_key = secrets.token_urlsafe(50)
        env_example = (
            (tree / ".env.example").read_text() if (tree / ".env.example").exists() else ""
        )
        self.pool_settings = sorted(set(UPSTREAM_POOL_SETTING.findall(env_example)))
        self.database_url = ""

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": "chatkit.settings",
            "CHATKIT_ENV_FILE": "",
            "DEBUG": "false",
            "SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CORS_ALLOWED_ORIGINS": "https://bench.invalid",
            # One trusted proxy: the bench speaks as it would, X-Forwarded-For and -Proto.
            "CHATKIT_TRUSTED_PROXIES": "1",
            "SECURE_PROXY_SSL_HEADER": "true",
            "DATABASE_URL": self.database_url,
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
            "REDIS_URL": self.redis_url,
            "OPENAI_API_KEY": "fake",
            "OPENAI_BASE_URL": self.fake.base_url,
            "LOG_LEVEL": "WARNING",
            **HIGH_LIMITS,
            **{name: "20000" for name in self.pool_settings},
            **overrides,
        }

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.tree,
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode:
            raise RuntimeError(f"{self.name}: manage.py {' '.join(args)}:\n{result.stderr[-3000:]}")
        return result.stdout

    def create_database(self) -> None:
        """A database of its own, migrated, with the default assistant's budget set high."""
        self.database_url = create_database(self.database)
        self.manage("migrate", "--noinput", "--verbosity", "0")
        self.manage(
            "shell",
            "-c",
            "from conversations.models import Assistant; "
            "Assistant.objects.filter(slug='default').update("
            f"daily_token_budget={DAILY_TOKEN_BUDGET}, max_output_tokens={MAX_OUTPUT_TOKENS})",
        )

    def drop_database(self) -> None:
        drop_database(self.database)

    def start(self, *, workers: int, **env: str) -> None:
        flush_redis(self.redis_url)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        argv = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", str(workers)]
        self.process = Process(f"{self.name}-serve", argv, cwd=self.tree, env=self.env(**env))
        wait_until_ready(self.process, f"{self.url}/health/ready")
        # The parent answers nothing under --workers: wait until every worker has started.
        deadline = time.monotonic() + 60
        while len(self.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: serve's spawned children, or serve itself."""
        assert self.process is not None
        if self.workers == 1:
            return [self.process.pid]
        return [pid for pid in children(self.process.pid) if "spawn_main" in cmdline(pid)]

    def all_pids(self) -> list[int]:
        assert self.process is not None
        return (
            [self.process.pid, *children(self.process.pid)]
            if self.workers > 1
            else [self.process.pid]
        )

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.worker_pids())

    def rss(self) -> int:
        return sum(rss_bytes(pid) for pid in self.all_pids())

    def threads(self) -> int:
        return sum(status_field(pid, "Threads") for pid in self.all_pids())

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None


class Baseline:
    """A commit's tree, checked out with `git worktree add` into a temporary directory."""

    def __init__(self, commit: str):
        self.commit = commit
        self.path = Path(tempfile.mkdtemp(prefix="chatkit-bench-baseline-"))
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--force", str(self.path), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(self.path)], cwd=ROOT, capture_output=True
        )
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)


class Node:
    """The Node/Express peer (bench/node/server.js), one process."""

    def __init__(self, fake: Fake):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {"PORT": str(self.port), "OPENAI_API_KEY": "fake", "OPENAI_BASE_URL": fake.base_url}
        self.process = Process("node", ["node", "server.js"], cwd=ROOT / "bench" / "node", env=env)
        wait_until_ready(self.process, f"{self.url}/health")

    def stop(self) -> None:
        self.process.stop()


def machine() -> dict:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    memory = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory / 1024**2, 1),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "node": node,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }

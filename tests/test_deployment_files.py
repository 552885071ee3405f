"""The Dockerfile and compose.yaml, read and run without Docker.

No Docker engine runs here, so `docker build` itself is not run. What the files tell a
container to do is: compose's migration step, then the image's command (ENTRYPOINT + CMD), with
the environment compose and the Dockerfile give it, on a temporary database (SQLite, or a
PostgreSQL database of the test's own when the suite runs on PostgreSQL) and a Redis of the
test's own; then the image's HEALTHCHECK against it, and `docker stop`'s SIGTERM.
"""

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.db import connection

from tests.helpers import ROOT
from tests.live import RedisProcess, ScratchPostgres, free_port

# What an operator's `.env` beside compose.yaml holds, for compose's ${…}.
OPERATOR = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "chat.example.com",
    "CORS_ALLOWED_ORIGINS": "https://www.example.com",
    "POSTGRES_PASSWORD": "compose-password",
}
# What a server prints once it listens (uvicorn's line; gunicorn's).
LISTENING = ("Uvicorn running on", "Listening at: ")


# --- Reading the files ------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, even inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def instruction(keyword: str) -> str | None:
    """The arguments of the last `keyword` instruction (the one that counts), or None."""
    found = [arguments for kw, arguments in dockerfile() if kw == keyword]
    return found[-1] if found else None


def exec_form(arguments: str) -> list[str]:
    """A JSON-array instruction's argv; shell form fails: its process would be /bin/sh, which
    passes no SIGTERM on to the server."""
    assert arguments.startswith("["), f"not exec form: {arguments}"
    return json.loads(arguments)


def image_command() -> list[str]:
    entrypoint = instruction("ENTRYPOINT")
    return (exec_form(entrypoint) if entrypoint else []) + exec_form(instruction("CMD"))


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options (interval, timeout, retries…) and its command."""
    options, _, command = instruction("HEALTHCHECK").partition("CMD ")
    return dict(re.findall(r"--([\w-]+)=(\S+)", options)), exec_form(command.strip())


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV, as the container starts with it."""
    env = {}
    for kw, arguments in dockerfile():
        if kw == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return env


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def service(name: str) -> dict:
    return compose()["services"][name]


VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, as `docker compose` fills them."""

    def one(match: re.Match) -> str:
        name, operator, argument = match.groups()
        value = variables.get(name)
        missing = value is None or (bool(operator) and operator.startswith(":") and value == "")
        if operator and operator.endswith("?"):
            assert not missing, f"compose refuses to start without {name}: {argument}"
        if operator and operator.endswith("-") and missing:
            return argument
        return value or ""

    return VARIABLE.sub(one, str(value))


def service_env(name: str) -> dict[str, str]:
    """What a service's container has in its environment: the image's ENV, then compose's."""
    environment = service(name).get("environment", {})
    return {**image_env(), **{k: interpolate(v, OPERATOR) for k, v in environment.items()}}


def documented_settings() -> set[str]:
    """Every variable .env.example lists (commented out or not)."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def chatkit_services() -> list[str]:
    return [name for name, spec in compose()["services"].items() if "build" in spec]


# --- What the files say -------------------------------------------------------------------------


def test_the_image_runs_as_a_user_that_is_not_root():
    user = instruction("USER")
    assert user is not None, "no USER: the server would run as root"
    assert user.split(":")[0] not in ("root", "0")
    # After every RUN: what they install stays root's, read-only to the server.
    keywords = [kw for kw, _ in dockerfile()]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")


def test_the_image_serves_on_the_port_compose_publishes_and_its_healthcheck_probes():
    command = image_command()
    assert command[:3] == ["python", "manage.py", "serve"]
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 (inside a container)
    assert instruction("EXPOSE") == port
    assert any(mapping.endswith(f":{port}") for mapping in service("app")["ports"])
    _, probe = healthcheck()
    assert f"http://127.0.0.1:{port}/health'" in probe[-1]


def test_secrets_and_local_state_stay_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv", "*.sqlite3", "staticfiles", "**/__pycache__"):
        assert entry in ignored


def test_compose_sets_only_settings_that_env_example_explains():
    documented = documented_settings()
    for name in chatkit_services():
        assert set(service(name)["environment"]) <= documented, name
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= documented  # the parse found them


def test_compose_reaches_its_own_database_and_redis():
    services = compose()["services"]
    for name in chatkit_services():
        env = service_env(name)
        database, cache = urlsplit(env["DATABASE_URL"]), urlsplit(env["REDIS_URL"])
        assert database.hostname in services and cache.hostname in services
        assert database.password == OPERATOR["POSTGRES_PASSWORD"]
        assert int(env["WEB_CONCURRENCY"]) > 1  # and so REDIS_URL is required, and set


def test_compose_starts_the_app_after_the_migration_on_healthy_servers():
    app, migrate = service("app"), service("migrate")
    assert app["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert migrate["command"][1:3] == ["manage.py", "migrate"]
    assert migrate["restart"] == "no"
    for server in ("db", "redis"):
        assert app["depends_on"][server] == {"condition": "service_healthy"}
        assert service(server)["healthcheck"]["test"]
    assert migrate["depends_on"]["db"] == {"condition": "service_healthy"}
    assert "healthcheck" not in app  # the image's HEALTHCHECK is the app's


# --- Running them -------------------------------------------------------------------------------


@pytest.fixture
def scratch_database(tmp_path):
    """The URL of an empty database of the test's own, of the kind the suite runs on."""
    if "postgresql" in connection.settings_dict["ENGINE"]:
        database = ScratchPostgres("chatkit_compose")
        yield database.url
        database.drop()
    else:
        yield f"sqlite:///{tmp_path / 'chatkit.sqlite3'}"


@pytest.fixture
def redis_url():
    server = RedisProcess()
    yield server.url
    server.stop()


def here(argv: list[str], *, port: str | None = None, free: int = 0) -> list[str]:
    """A container's argv as it runs here: this virtualenv's python; the container's port
    (8000) moved to a free one on localhost."""
    argv = [sys.executable if arg == "python" else arg for arg in argv]
    if port:
        argv = [arg.replace(f":{port}/", f":{free}/") for arg in argv]
        for option, value in (("--port", str(free)), ("--host", "127.0.0.1")):
            if option in argv:
                argv[argv.index(option) + 1] = value
    return argv


def run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run a command to its end; one that outlasts `timeout` fails, as Docker counts it."""
    try:
        return subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        return subprocess.CompletedProcess(argv, -1, "", f"timed out after {timeout} s: {expired}")


class Container:
    """The image's command as a process, its output read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.output: list[str] = []
        self.listened = False
        self._listening = threading.Event()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if any(marker in line for marker in LISTENING):
                self.listened = True
                self._listening.set()
        self._listening.set()  # it exited

    def listening(self, timeout: float) -> bool:
        """Wait until it says it listens; False if it exited first or took longer."""
        return self._listening.wait(timeout) and self.listened

    def stop(self, grace: float) -> int | None:
        """`docker stop`: SIGTERM, then SIGKILL after the grace period; the exit status it
        reached by itself, or None when it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode

    @property
    def log(self) -> str:
        return "".join(self.output)


def seconds(duration: str) -> float:
    """A compose or Dockerfile duration: 30s, 1m30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_the_migration_step_then_the_image_command_then_its_healthcheck(
    scratch_database, redis_url, tmp_path
):
    # Only what names compose's own hosts (db, redis) and its tmpfs is replaced.
    local = {"DATABASE_URL": scratch_database, "REDIS_URL": redis_url}
    path = {"PATH": os.environ["PATH"]}
    migrate = run(
        here(service("migrate")["command"]), {**path, **service_env("migrate"), **local}, 180
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    app_env = {**path, **service_env("app"), **local}
    assert "PROMETHEUS_MULTIPROC_DIR" in app_env
    app_env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tmp_path, "metrics").resolve())
    Path(app_env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()  # as the tmpfs is, empty
    unapplied = run([sys.executable, "manage.py", "migrate", "--check"], app_env, 60)
    assert unapplied.returncode == 0, unapplied.stdout + unapplied.stderr

    command = image_command()
    port, free = command[command.index("--port") + 1], free_port()
    options, probe = healthcheck()
    container = Container(here(command, port=port, free=free), app_env)
    try:
        start_period = seconds(options["start-period"])
        assert container.listening(start_period), container.log
        # As Docker probes a starting container: failures within the start period do not
        # count (the socket listens once a worker has started), the first success makes it
        # healthy. Each probe is a fresh python, which paces the loop.
        deadline, probes = time.monotonic() + start_period, []
        while container.process.poll() is None and time.monotonic() < deadline:
            probes.append(
                run(here(probe, port=port, free=free), app_env, seconds(options["timeout"]))
            )
            if probes[-1].returncode == 0:
                break
        assert probes and probes[-1].returncode == 0, [probes[-1:], container.log]
    finally:
        stopped = container.stop(seconds(service("app")["stop_grace_period"]))
    assert stopped is not None, "still running after the stop grace period:\n" + container.log

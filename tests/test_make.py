"""The Makefile's development verbs, run by `make` as a developer types them: `manage`,
`superuser` (with and without a terminal) and what `run` watches for reloading.

Each runs in an environment with nothing of the suite's settings (no DEBUG, no SECRET_KEY, no
DJANGO_SETTINGS_MODULE), on the suite's test database. `-o` keeps make from reinstalling the
virtualenv: these are about the commands, not the installation.
"""

import ast
import json
import os
import pty
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from conversations.models import Session
from tests.factories import idle_conversation
from tests.helpers import ROOT
from tests.live import database_url, free_port

VENV = Path(sys.prefix)


def make_command(*args: str) -> list[str]:
    return ["make", "-s", "-o", f"{VENV}/.runtime", f"VENV={VENV}", *args]


def developer_env(**extra: str) -> dict[str, str]:
    """A shell's environment: the suite's settings left out, the test database in."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return {**env, "DATABASE_URL": database_url(), **extra}


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        make_command(*args),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal, as in CI or a provisioning script
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- make manage ------------------------------------------------------------------------------


def test_make_manage_runs_a_command_as_the_readme_writes_it(transactional_db, assistant):
    old = idle_conversation(assistant, timedelta(days=40), messages=3)

    result = make("manage", "ARGS=purge_sessions --older-than 30d --dry-run", env=developer_env())

    # Without make's DEBUG=true, the settings would refuse to load (no SECRET_KEY).
    assert result.returncode == 0, result.stderr
    assert "Dry run: would delete 1 conversation and 3 messages" in result.stdout
    assert Session.objects.filter(pk=old.pk).exists()


def test_make_manage_passes_on_the_commands_refusal(transactional_db):
    result = make("manage", "ARGS=purge_sessions --older-than 2m", env=developer_env())

    assert result.returncode != 0
    assert "'2m': use a number and one of the units min, h, d, w" in result.stderr
    assert "Traceback" not in result.stderr


# --- make superuser ---------------------------------------------------------------------------


def test_make_superuser_without_a_terminal_creates_one_from_the_environment(
    transactional_db, django_user_model, settings
):
    env = developer_env(
        DJANGO_SUPERUSER_USERNAME="ada",
        DJANGO_SUPERUSER_EMAIL="ada@example.com",
        DJANGO_SUPERUSER_PASSWORD="correct horse battery",
    )

    result = make("superuser", env=env)

    assert result.returncode == 0, result.stderr
    ada = django_user_model.objects.get(username="ada")
    assert ada.is_superuser and ada.is_staff and ada.email == "ada@example.com"
    # Hashed as development hashes it, not as the suite does.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    assert ada.check_password("correct horse battery")


def test_make_superuser_without_a_terminal_or_variables_says_which_to_set(
    transactional_db, django_user_model
):
    result = make("superuser", env=developer_env(DJANGO_SUPERUSER_USERNAME="ada"))

    assert result.returncode != 0
    assert (
        "set DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_EMAIL (may be empty) and "
        "DJANGO_SUPERUSER_PASSWORD" in result.stderr
    )
    assert not django_user_model.objects.exists()


def test_make_superuser_at_a_terminal_asks(transactional_db):
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        make_command("superuser"),
        cwd=ROOT,
        env=developer_env(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    printed = b""
    try:
        deadline = time.monotonic() + 60
        while b"Username" not in printed and time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                printed += os.read(controller, 1024)
            except OSError:  # the terminal closed: make exited
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        os.close(controller)

    assert b"Username" in printed, printed


# --- make run ---------------------------------------------------------------------------------


def run_command(port: int) -> list[str]:
    """The uvicorn command line `make run` would run."""
    planned = subprocess.run(
        make_command("-n", "run", "HOST=127.0.0.1", f"PORT={port}"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    line = next(line for line in planned.splitlines() if "uvicorn " in line)
    return line.split()


def test_make_run_reloads_on_the_projects_code_and_never_watches_the_virtualenv(
    transactional_db,
):
    port = free_port()
    command = run_command(port)
    assert "--reload" in command
    lines: queue.Queue[str] = queue.Queue()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=developer_env(DEBUG="true", LOG_FORMAT="json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    threading.Thread(target=lambda: list(map(lines.put, process.stdout)), daemon=True).start()
    watched = None
    try:
        deadline = time.monotonic() + 30
        while watched is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            # uvicorn's reloader says what it watches as it starts, in the settings' format.
            if "Will watch for changes in these directories:" in line:
                message = json.loads(line)["message"]
                watched = [Path(d) for d in ast.literal_eval(message.split("directories:", 1)[1])]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)

    assert watched is not None, "uvicorn's reloader did not start"
    venv = ROOT / ".venv"
    assert not [d for d in watched if venv == d or venv.is_relative_to(d)], watched
    assert ROOT / "conversations" in watched
    assert ROOT / "chatkit" in watched

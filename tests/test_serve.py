"""`manage.py serve` checks the configuration before any worker starts: a real process that
exits at once, one line per problem, no traceback (and no workers restarted forever)."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-long-random-production-secret-" + "k" * 40,
    "ALLOWED_HOSTS": "chat.example.com",
    "CORS_ALLOWED_ORIGINS": "https://www.example.com",
}
# A crash loop would run on; a refusal takes the time to load Django.
REFUSAL_TIMEOUT = 60


def serve(*options: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py serve` under exactly the given environment (a port nothing listens on)."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "manage.py", "serve", "--port", "1", *options],
        cwd=ROOT,
        env=clean | {"CHATKIT_ENV_FILE": ""} | env,
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT,
    )


def test_serve_with_nothing_configured_names_every_problem_and_exits():
    refused = serve("--workers", "2", DEBUG="false")

    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    for problem in ("SECRET_KEY must", "ALLOWED_HOSTS must", "CORS_ALLOWED_ORIGINS must"):
        assert sum(line.startswith(problem) for line in lines) == 1, refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout


def test_serve_refuses_several_workers_without_a_shared_cache():
    refused = serve("--workers", "2", **PRODUCTION)

    assert refused.returncode == 1
    assert "REDIS_URL must be set to run 2 workers" in refused.stderr.splitlines()[1]
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("workers", "pool", "budget", "over"),
    [("3", "10", "25", "30"), ("2", "4", "7", "8")],
)
def test_serve_refuses_more_connections_than_the_budget(workers, pool, budget, over):
    refused = serve(
        "--workers",
        workers,
        **PRODUCTION,
        REDIS_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL="postgres://chatkit@127.0.0.1:5432/chatkit",  # never connected to
        DB_POOL_MAX_SIZE=pool,
        CHATKIT_DB_CONNECTION_BUDGET=budget,
    )

    assert refused.returncode == 1
    assert (
        f"{workers} workers x DB_POOL_MAX_SIZE {pool} = {over} PostgreSQL connections, over "
        f"CHATKIT_DB_CONNECTION_BUDGET ({budget})"
    ) in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_settings_refusal_lists_one_problem_a_line_for_any_command():
    refused = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "CHATKIT_ENV_FILE": "", **PRODUCTION, "ALLOWED_HOSTS": ""},
        capture_output=True,
        text=True,
    )

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "Refusing to start with DEBUG off (see .env.example):",
        "ALLOWED_HOSTS must list the host names this server answers to",
    ]


def test_workers_whose_application_fails_to_load_stop_the_server(tmp_path):
    # What the checks cannot foresee: the server stops (STARTUP_FAILURE) instead of starting
    # new workers forever.
    (tmp_path / "failing_app.py").write_text("raise RuntimeError('broken at import')\n")
    script = tmp_path / "serve_failing.py"
    script.write_text(
        "import django\n"
        "from chatkit import serving\n"
        "serving.APPLICATION = 'failing_app:application'\n"
        "if __name__ == '__main__':\n"
        "    django.setup()\n"
        "    serving.serve(host='127.0.0.1', port=0, workers=2)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {"CHATKIT_ENV_FILE": "", "DEBUG": "true", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    stopped = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=clean | env | {"DJANGO_SETTINGS_MODULE": "chatkit.settings"},
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT,
    )

    assert stopped.returncode == 3, stopped.stderr
    assert stopped.stderr.count("the application failed to load") <= 2  # once per worker

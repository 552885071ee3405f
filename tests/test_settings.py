"""Settings: production refuses insecure values; databases are configured as documented."""

import os
import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatkit.environment import Env
from tests.helpers import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-long-random-production-secret-" + "k" * 40,
    "ALLOWED_HOSTS": "chat.example.com",
    "CORS_ALLOWED_ORIGINS": "https://www.example.com",
}


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run Python with chatkit.settings under exactly the given environment."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    clean |= {"DJANGO_SETTINGS_MODULE": "chatkit.settings", "CHATKIT_ENV_FILE": ""} | env
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def settings_value(expression: str, **env: str) -> str:
    result = run_django(
        f"import django; django.setup(); from django.conf import settings; print({expression})",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("missing", "complaint"),
    [
        ("SECRET_KEY", "SECRET_KEY"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS"),
        ("CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGINS"),
    ],
)
def test_production_refuses_to_start_without(missing, complaint):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = run_django("import django; django.setup()", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


@pytest.mark.parametrize(
    "insecure",
    [
        {"SECRET_KEY": "short"},
        {"SECRET_KEY": "django-insecure-" + "x" * 60},
        {"ALLOWED_HOSTS": "*"},
        {"METRICS_TOKEN": "guessable"},
    ],
)
def test_production_refuses_insecure_values(insecure):
    result = run_django("import django; django.setup()", **(PRODUCTION | insecure))
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr


@pytest.mark.parametrize(
    "setting", ["CHATKIT_STREAM_PING_SECONDS", "OPENAI_FIRST_TOKEN_TIMEOUT", "CHATKIT_DB_THREADS"]
)
def test_durations_and_sizes_must_be_positive(setting):
    result = run_django("import django; django.setup()", **PRODUCTION, **{setting: "0"})
    assert result.returncode != 0
    assert f"{setting} must be a positive number" in result.stderr


@pytest.mark.parametrize("setting", ["CHATKIT_MAX_BODY_BYTES", "CHATKIT_ADMIN_MAX_BODY_BYTES"])
@pytest.mark.parametrize("value", ["0", "2621440"])  # 2621440: Django would spool it to disk
def test_body_caps_must_be_positive_and_kept_in_memory(setting, value):
    result = run_django("import django; django.setup()", **PRODUCTION, **{setting: value})
    assert result.returncode != 0
    assert f"{setting} must be a positive number below FILE_UPLOAD_MAX_MEMORY_SIZE" in (
        result.stderr
    )


def test_an_unknown_log_format_is_refused():
    result = run_django("import django; django.setup()", **PRODUCTION, LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json" in result.stderr


def test_production_passes_the_deploy_check_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "CHATKIT_ENV_FILE": "", **PRODUCTION},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_are_local_and_demo():
    env = {"DEBUG": "true"}
    assert settings_value("settings.ALLOWED_HOSTS", **env) == "['localhost', '127.0.0.1', '[::1]']"
    assert settings_value("settings.DATABASES['default']['ENGINE']", **env).endswith("sqlite3")
    assert settings_value("settings.CACHES['default']['BACKEND']", **env).endswith("LocMemCache")
    assert settings_value("settings.OPENAI_API_KEY == ''", **env) == "True"


def test_postgres_gets_a_pool_configured_in_code():
    env = {
        "DEBUG": "true",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/chat",
        "DB_POOL_MAX_SIZE": "7",
        "DB_POOL_TIMEOUT": "3",
    }
    options = settings_value("settings.DATABASES['default']['OPTIONS']", **env)
    assert options == "{'pool': {'min_size': 1, 'max_size': 7, 'timeout': 3.0}}"
    assert settings_value("settings.DATABASES['default']['CONN_MAX_AGE']", **env) == "0"


def test_the_postgres_pool_is_small_by_default():
    env = {"DEBUG": "true", "DATABASE_URL": "postgres://u@127.0.0.1:5432/chat"}
    options = settings_value("settings.DATABASES['default']['OPTIONS']['pool']", **env)
    assert options == "{'min_size': 1, 'max_size': 4, 'timeout': 10.0}"


@pytest.mark.parametrize("sizes", [{"DB_POOL_MAX_SIZE": "0"}, {"DB_POOL_MIN_SIZE": "5"}])
def test_a_pool_that_cannot_open_is_refused(sizes):
    env = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/chat", **sizes}
    result = run_django("import django; django.setup()", **PRODUCTION, **env)
    assert result.returncode != 0
    assert "DB_POOL_MAX_SIZE must be at least 1, and DB_POOL_MIN_SIZE between 0" in result.stderr


def test_redis_url_switches_the_cache_to_redis():
    env = {"DEBUG": "true", "REDIS_URL": "redis://127.0.0.1:6379/3"}
    assert settings_value("settings.CACHES['default']['BACKEND']", **env).endswith("RedisCache")


def test_sqlite_runs_in_wal_mode_with_immediate_transactions(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])\n"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])\n"
    )
    result = run_django(code, DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE"]


@pytest.mark.parametrize("origins", ["*", "www.example.com", "https://example.com/widget"])
def test_production_refuses_cors_entries_that_are_not_origins(origins):
    result = run_django(
        "import django; django.setup()", **(PRODUCTION | {"CORS_ALLOWED_ORIGINS": origins})
    )
    assert result.returncode != 0
    assert "CORS_ALLOWED_ORIGINS entries must be origins" in result.stderr


def test_env_example_lists_every_setting():
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', (ROOT / "chatkit/settings.py").read_text()))
    listed = set(re.findall(r"^# ([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no settings found"
    assert read - listed == set()


def test_a_copied_env_example_keeps_the_development_defaults():
    env = {"DEBUG": "true", "CHATKIT_ENV_FILE": str(ROOT / ".env.example")}
    assert settings_value("settings.ALLOWED_HOSTS", **env) == "['localhost', '127.0.0.1', '[::1]']"
    assert settings_value("settings.OPENAI_MODEL", **env) == "gpt-4o-mini"


def test_production_with_several_workers_refuses_to_count_limits_per_worker():
    refused = run_django("import django; django.setup()", **PRODUCTION, WEB_CONCURRENCY="2")
    assert refused.returncode != 0
    assert "REDIS_URL must be set with more than one worker" in refused.stderr
    shared = {"WEB_CONCURRENCY": "2", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert settings_value("settings.WEB_CONCURRENCY", **PRODUCTION, **shared) == "2"
    # One worker, or limits switched off, need no shared cache.
    assert settings_value("settings.WEB_CONCURRENCY", **PRODUCTION) == "1"
    off = {"WEB_CONCURRENCY": "2", "CHATKIT_RATELIMIT_ENABLED": "false"}
    assert settings_value("settings.WEB_CONCURRENCY", **PRODUCTION, **off) == "2"


@pytest.mark.parametrize("rate", ["10", "ten/m", "10/w", "10/m/2", "-1/m", "5/0m"])
def test_a_rate_that_is_not_count_per_period_is_refused(rate):
    result = run_django(
        "import django; django.setup()", **PRODUCTION, CHATKIT_RATELIMIT_MESSAGES_PER_IP=rate
    )
    assert result.returncode != 0
    assert "CHATKIT_RATELIMIT_MESSAGES_PER_IP" in result.stderr


def test_one_switch_turns_every_limit_off_django_ratelimits_too():
    assert settings_value("settings.RATELIMIT_ENABLE", **PRODUCTION) == "True"
    off = settings_value(
        "settings.RATELIMIT_ENABLE", **PRODUCTION, CHATKIT_RATELIMIT_ENABLED="false"
    )
    assert off == "False"
    # django-ratelimit's own checks reject a local-memory cache: it is not an installed app.
    assert settings_value("'django_ratelimit' in settings.INSTALLED_APPS", **PRODUCTION) == "False"


def test_a_worker_process_without_redis_refuses_to_start(tmp_path):
    # `uvicorn --workers 2` starts workers as child processes, WEB_CONCURRENCY or not.
    script = tmp_path / "workers.py"
    script.write_text(
        "import multiprocessing, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "def load():\n"
        "    import chatkit.asgi\n"
        "if __name__ == '__main__':\n"
        "    worker = multiprocessing.get_context('spawn').Process(target=load)\n"
        "    worker.start(); worker.join()\n"
        "    print('exit', worker.exitcode)\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "chatkit.settings", **PRODUCTION}
    alone = run_django("import chatkit.asgi; print('served')", **env)
    assert alone.returncode == 0 and "served" in alone.stdout, alone.stderr

    refused = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "CHATKIT_ENV_FILE": "", **env},
        capture_output=True,
        text=True,
    )
    assert "exit 1" in refused.stdout
    assert "Refusing to start a worker process without REDIS_URL" in refused.stderr

    shared = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "CHATKIT_ENV_FILE": "",
            **env,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        },
        capture_output=True,
        text=True,
    )
    assert "exit 0" in shared.stdout, shared.stderr


# --- Malformed values -----------------------------------------------------------------------

PASSWORD = "pa55-w0rd-do-not-print"


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("OPENAI_TIMEOUT", "soon", "OPENAI_TIMEOUT must be a number, not 'soon'"),
        ("DB_POOL_MAX_SIZE", "x", "DB_POOL_MAX_SIZE must be a whole number, not 'x'"),
        ("CHATKIT_RETENTION_DAYS", "30d", "CHATKIT_RETENTION_DAYS must be a whole number"),
        ("SECURE_SSL_REDIRECT", "ture", "SECURE_SSL_REDIRECT must be true or false, not 'ture'"),
        ("DATABASE_URL", "nonsense", "DATABASE_URL must be a PostgreSQL or SQLite URL"),
        ("DATABASE_URL", f"postgres://u:{PASSWORD}@db:port/chat", "DATABASE_URL: its port"),
        ("DATABASE_URL", f"mongodb://u:{PASSWORD}@db/chat", "DATABASE_URL must be a PostgreSQL"),
        ("REDIS_URL", f"http://u:{PASSWORD}@cache:6379/0", "REDIS_URL must be a Redis URL"),
    ],
)
def test_a_malformed_value_is_named_with_its_problem(setting, value, complaint):
    env = PRODUCTION | {"DATABASE_URL": f"postgres://u:{PASSWORD}@db/chat", setting: value}
    result = run_django("import django; django.setup()", **env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: " + complaint)
    assert "ValueError" not in result.stderr and PASSWORD not in result.stderr


@pytest.mark.parametrize("secret", ["SECRET_KEY", "OPENAI_API_KEY", "METRICS_TOKEN"])
def test_a_secret_is_never_shown(secret):
    # Settings read these as text, which cannot be malformed; read as anything else, the
    # error still names the variable and not its value.
    reader = Env()
    reader.ENVIRON = {secret: "sk-" + PASSWORD}
    with pytest.raises(ImproperlyConfigured) as error:
        reader.int(secret, default=1)
    assert str(error.value) == f"{secret} must be a whole number."


def test_an_empty_value_counts_as_unset():
    assert settings_value("settings.OPENAI_TIMEOUT", **PRODUCTION, OPENAI_TIMEOUT="") == "60.0"


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("CHATKIT_PORT", "99999", "CHATKIT_PORT must be a port number"),
        ("CHATKIT_DB_CONNECTION_BUDGET", "-1", "CHATKIT_DB_CONNECTION_BUDGET must be 0"),
        ("CHATKIT_AUDIT_RETENTION_DAYS", "0", "CHATKIT_AUDIT_RETENTION_DAYS must be 1 or more"),
    ],
)
def test_values_out_of_range_are_named(variable, value, complaint):
    result = run_django("import django; django.setup()", **PRODUCTION, **{variable: value})
    assert result.returncode != 0
    assert complaint in result.stderr

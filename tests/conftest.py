"""Fixtures shared by the whole suite."""

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from conversations import limits
from conversations.models import Assistant, Session
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(autouse=True)
def fresh_rate_limits(monkeypatch, settings):
    """Each test counts from zero: counters in memory are forgotten, and in Redis, which the
    suite may share with other runs, each test counts under keys of its own (django-ratelimit's,
    for the admin sign-in, too)."""
    namespace = uuid.uuid4().hex
    limits.local_reset()
    monkeypatch.setattr(limits, "KEY_PREFIX", f"chatkit:test:{namespace}:")
    settings.RATELIMIT_CACHE_PREFIX = f"rl:test:{namespace}:"


@pytest.fixture(scope="session")
def fake_server():
    """One fake OpenAI-compatible server for the run, on a real local port."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_llm(fake_server, settings):
    """Point the real `openai` SDK at the fake server, with clean knobs and records."""
    fake_server.reset()
    fake_server.configure(ttft=0, itl=0)
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = fake_server.base_url
    settings.OPENAI_MODEL = "fake-model"
    settings.OPENAI_MAX_RETRIES = 0
    yield fake_server
    fake_server.reset()


@pytest.fixture
def fake(fake_server):
    """The fake model as it was made (no knobs turned), reset again after the test."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def api(db):
    """A client that behaves like a visitor's browser script: JSON in, JSON out."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def assistant(db):
    """The `default` assistant (made again in tests whose database is flushed between them)."""
    assistant, _ = Assistant.objects.get_or_create(
        slug="default", defaults={"name": "Assistant", "system_prompt": "Be helpful."}
    )
    return assistant


@pytest.fixture
def session(db, assistant):
    return Session.objects.create(assistant=assistant)


@pytest.fixture(scope="session")
def live_server_factory(django_db_setup, django_db_blocker):
    """Start real uvicorn processes on the test database (`command`: tests.live's UVICORN by
    default, or SERVE); all are stopped at the end."""
    from tests.live import LiveServer

    servers = []

    def start(command: list[str] | None = None, **env) -> LiveServer:
        # Rate limits count per client IP, and every test's requests come from 127.0.0.1:
        # off unless a test turns them on (tests/test_limits_live.py does).
        env.setdefault("CHATKIT_RATELIMIT_ENABLED", "false")
        server = LiveServer(command, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def model_server_factory(live_server_factory, fake_server):
    """Start real uvicorn processes that answer with the fake model (`env` adds settings)."""

    def start(command: list[str] | None = None, **env):
        return live_server_factory(
            command, TEST_OPENAI_API_KEY="test-key", OPENAI_BASE_URL=fake_server.base_url, **env
        )

    return start


@pytest.fixture
def default_assistant(transactional_db, assistant):
    """The `default` assistant, for tests that need their writes committed (live servers)."""
    return assistant


@pytest.fixture
async def close_executor_connections():
    """Async ORM calls in a test leave a connection open on asgiref's thread; give it back."""
    yield
    await sync_to_async(connections.close_all)()

"""API routes through their own middleware chain (chatkit.handlers): the same answers as through
all of `MIDDLEWARE`, without a thread hop; the admin keeps sessions, CSRF and sign-in."""

import functools

import httpx
import pytest
from asgiref.sync import SyncToAsync, markcoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler

from chatkit.asgi import ChatKitASGIHandler
from conversations import db
from tests.factories import conversation, reply, visitor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_executor_connections", "assistant"),
]

SHOP = "https://shop.example"  # in CORS_ALLOWED_ORIGINS (tests/settings.py)


def client(app, *, base_url: str = "https://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def both(method: str, path: str, base_url: str = "https://testserver", **kwargs):
    """The answer of Django's own handler (every middleware) and of ours, built now."""
    answers = []
    for app in (ASGIHandler(), ChatKitASGIHandler()):
        async with client(app, base_url=base_url) as http:
            answers.append(await http.request(method, path, **kwargs))
    return answers


def headers_of(response: httpx.Response) -> list[tuple[str, str]]:
    """The headers, but the body's length: `/health`'s uptime is not always as many digits."""
    if "content-length" in response.headers:
        assert int(response.headers["content-length"]) == len(response.content)
    return sorted((k, v) for k, v in response.headers.multi_items() if k != "content-length")


@pytest.fixture
def hsts(settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/health", {}),
        ("GET", "/health/ready", {}),
        ("GET", "/api/v1/assistants/default", {"Origin": SHOP}),
        ("GET", "/api/v1/assistants/default", {"Origin": "https://elsewhere.example"}),
        ("GET", "/api/v1/assistants/nope", {"Origin": SHOP}),
        ("GET", "/api/nope", {}),
        ("POST", "/health", {}),  # 405
        (
            "OPTIONS",
            "/api/v1/sessions",
            {"Origin": SHOP, "Access-Control-Request-Method": "POST"},
        ),
        ("GET", "/api/v1/assistants/default", {"Host": "evil.example"}),
        ("GET", "/health", {"Host": "10.0.0.7:8000"}),  # a probe answers any host
    ],
)
async def test_api_answers_carry_the_headers_all_of_middleware_gives(hsts, method, path, headers):
    django, ours = await both(method, path, headers=headers)
    assert ours.status_code == django.status_code
    assert headers_of(ours) == headers_of(django)


async def test_api_answers_carry_the_security_headers(hsts):
    async with client(ChatKitASGIHandler()) as http:
        for path in ("/health", "/api/v1/assistants/default"):
            response = await http.get(path)
            assert response.status_code == 200
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Strict-Transport-Security"] == (
                "max-age=3600; includeSubDomains; preload"
            )
            assert response.headers["Referrer-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Content-Length"] == str(len(response.content))


async def test_api_routes_redirect_to_https_and_probes_do_not(settings):
    settings.SECURE_SSL_REDIRECT = True
    async with client(ChatKitASGIHandler(), base_url="http://testserver") as http:
        config = await http.get("/api/v1/assistants/default?x=1")
        assert config.status_code == 301
        assert config.headers["Location"] == "https://testserver/api/v1/assistants/default?x=1"
        for probe in ("/health", "/health/ready"):
            assert (await http.get(probe)).status_code == 200


async def test_cors_headers_on_preflights_and_answers():
    async with client(ChatKitASGIHandler()) as http:
        preflight = await http.options(
            "/api/v1/sessions",
            headers={
                "Origin": SHOP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "content-type" in preflight.headers["Access-Control-Allow-Headers"]

        answer = await http.get("/api/v1/assistants/default", headers={"Origin": SHOP})
        assert answer.headers["Access-Control-Allow-Origin"] == SHOP
        assert answer.headers["Access-Control-Expose-Headers"] == "Retry-After"
        assert "origin" in answer.headers["Vary"].lower()

        other = await http.get(
            "/api/v1/assistants/default", headers={"Origin": "https://elsewhere.example"}
        )
        assert "Access-Control-Allow-Origin" not in other.headers


async def test_a_host_not_allowed_is_refused_with_json():
    async with client(ChatKitASGIHandler()) as http:
        response = await http.get("/api/v1/assistants/default", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


class Hops:
    """Counts thread hops (`sync_to_async` calls, and database steps sent to their pool) and
    names what each ran."""

    def __init__(self, monkeypatch):
        self.ran: list[str] = []
        original = SyncToAsync.__call__

        async def counted(hop, *args, **kwargs):
            self.ran.append(getattr(hop.func, "__name__", repr(hop.func)))
            return await original(hop, *args, **kwargs)

        monkeypatch.setattr(SyncToAsync, "__call__", counted)
        submit = db._executor.submit

        def submitted(fn, *args, **kwargs):
            # A step runs as `context.run(step, ...)`: a partial whose first argument is it.
            step = fn.args[0] if isinstance(fn, functools.partial) else fn
            self.ran.append(getattr(step, "__name__", repr(step)))
            return submit(fn, *args, **kwargs)

        monkeypatch.setattr(db._executor, "submit", submitted)


async def test_a_probe_makes_no_thread_hop(monkeypatch):
    app = ChatKitASGIHandler()
    async with client(app) as http:
        hops = Hops(monkeypatch)
        response = await http.get("/health")
    assert response.status_code == 200
    assert hops.ran == []


async def test_reading_a_session_hops_only_for_its_database_step(monkeypatch, assistant):
    session = await sync_to_async(conversation)(assistant, visitor("hi"), reply("hello"))
    app = ChatKitASGIHandler()
    async with client(app) as http:
        hops = Hops(monkeypatch)
        response = await http.get(f"/api/v1/sessions/{session.public_id}")
    assert response.status_code == 200
    assert [m["content"] for m in response.json()["messages"]] == ["hi", "hello"]
    assert hops.ran == ["session_read"]


async def test_starting_a_conversation_is_one_database_step(monkeypatch):
    async with client(ChatKitASGIHandler()) as http:
        hops = Hops(monkeypatch)
        response = await http.post("/api/v1/sessions", json={})
    assert response.status_code == 201
    assert hops.ran == ["session_open"]


async def test_a_streamed_turn_hops_only_for_its_two_database_steps(monkeypatch, fake_llm):
    fake_llm.configure(reply_tokens=3)
    app = ChatKitASGIHandler()
    async with client(app) as http:
        created = await http.post("/api/v1/sessions", json={})
        session_id = created.json()["id"]
        hops = Hops(monkeypatch)
        response = await http.post(
            f"/api/v1/sessions/{session_id}/messages", json={"content": "hi", "stream": True}
        )
    assert response.status_code == 200
    assert "tok0 tok1 tok2" in response.text and "event: done" in response.text
    assert hops.ran == ["turn_open_sync", "turn_end_sync"]


class SyncOnly:
    """An operator's sync-only middleware: it must not be dropped from API routes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Operator"] = "kept"
        return response


async def test_an_operators_sync_middleware_still_runs_on_api_routes(settings, monkeypatch):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_api_chain.SyncOnly"]
    app = ChatKitASGIHandler()
    async with client(app) as http:
        hops = Hops(monkeypatch)
        response = await http.get("/health")
    assert response.headers["X-Operator"] == "kept"
    assert len(hops.ran) == 1  # its one hop, as Django would make it


class SeesRequests:
    """Test middleware: records whether a request came with a session and a user."""

    async_capable, sync_capable = True, False
    seen: list[tuple[bool, bool]] = []

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        SeesRequests.seen.append((hasattr(request, "session"), hasattr(request, "user")))
        return await self.get_response(request)


async def test_the_admin_keeps_sessions_csrf_and_sign_in(settings, django_user_model):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_api_chain.SeesRequests"]
    SeesRequests.seen = []
    await django_user_model.objects.acreate_superuser("boss", "boss@example.com", "pw")
    async with client(ChatKitASGIHandler()) as http:
        await http.get("/health")
        page = await http.get("/admin/login/")
        assert page.status_code == 200
        token = http.cookies["csrftoken"]
        login = {"username": "boss", "password": "pw", "next": "/admin/"}
        refused = await http.post(
            "/admin/login/", data=login, headers={"Referer": "https://testserver/admin/login/"}
        )
        assert refused.status_code == 403  # no CSRF token
        signed_in = await http.post(
            "/admin/login/",
            data={**login, "csrfmiddlewaretoken": token},
            headers={"Referer": "https://testserver/admin/login/"},
        )
        assert signed_in.status_code == 302, signed_in.text
        assert "sessionid" in http.cookies
        assert (await http.get("/admin/")).status_code == 200
    # The probe went without a session or user; the admin's pages with both.
    assert SeesRequests.seen == [(False, False)] + [(True, True)] * 4

"""The product served the way production serves it: `uvicorn chatkit.asgi:application`."""

import httpx
import pytest

from tests.helpers import raw_post


@pytest.fixture(scope="module")
def server(live_server_factory):
    return live_server_factory()


def test_uvicorn_serves_health_and_the_api(server, default_assistant):
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/health").json()["status"] == "OK"
        assert client.get("/health/ready").status_code == 200
        session_id = client.post("/api/create-session", json={}).json()["sessionId"]
        reply = client.post("/api/chat", json={"sessionId": session_id, "message": "hi"})
        assert reply.status_code == 200
        assert reply.json()["response"].startswith("[Demo mode]")


def test_uvicorn_serves_the_demo_page_static_files_and_admin(server, default_assistant):
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/")
        assert page.status_code == 200 and "/static/widget/chatkit.js" in page.text
        script = client.get("/static/widget/chatkit.js")
        assert script.status_code == 200 and "attachShadow" in script.text
        assert client.get("/admin/login/").status_code == 200
        assert client.get("/api/docs").status_code == 200
        assert client.get("/api/nope").json()["error"]["code"] == "not_found"


def test_uvicorn_answers_from_the_configured_model(
    model_server_factory, fake_server, default_assistant
):
    fake_server.reset()
    fake_server.configure(reply="Served by the fake model.")
    server = model_server_factory()
    with httpx.Client(base_url=server.url) as client:
        session_id = client.post("/api/v1/sessions", json={}).json()["id"]
        turn = client.post(f"/api/v1/sessions/{session_id}/messages", json={"content": "hi"})
    assert turn.status_code == 201
    assert turn.json()["assistant_message"]["content"] == "Served by the fake model."


def test_one_reply_in_flight_holds_across_processes(
    model_server_factory, fake_server, default_assistant
):
    fake_server.reset()
    first, second = model_server_factory(), model_server_factory()
    session_id = httpx.post(f"{first.url}/api/v1/sessions", json={}).json()["id"]
    path = f"/api/v1/sessions/{session_id}/messages"
    fake_server.configure(fault="hang")  # the first reply stays in flight until we leave

    body = b'{"content": "hi"}'
    visitor = raw_post(first.port, path, body, f"Content-Length: {len(body)}\r\n")
    assert fake_server.wait_for_requests(1, 10)
    busy = httpx.post(second.url + path, json={"content": "hi"}, timeout=10)
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "reply_in_progress"
    visitor.close()  # the visitor gives up: the first process stores the reply

    assert fake_server.wait_for_disconnect(10)  # the upstream request was closed...
    assert first.wait_for_output("status=interrupted")  # ...and the reply stored
    fake_server.configure(fault=None, reply="Now it works.")
    retry = httpx.post(second.url + path, json={"content": "hi"}, timeout=10)
    assert retry.status_code == 201, retry.text
    assert retry.json()["assistant_message"]["content"] == "Now it works."
    statuses = httpx.get(f"{second.url}/api/v1/sessions/{session_id}").json()["messages"]
    assert [m["status"] for m in statuses] == ["complete", "interrupted", "complete", "complete"]


def test_with_the_documented_flags_forwarded_for_is_left_to_the_product(server, default_assistant):
    # Run as the README and `make run` run it (--no-proxy-headers), uvicorn does not believe
    # X-Forwarded-For from 127.0.0.1 itself: CHATKIT_TRUSTED_PROXIES (0 here) decides.
    from conversations.models import Session
    from conversations.policy import ip_hash

    response = httpx.post(
        f"{server.url}/api/v1/sessions", json={}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    session = Session.objects.get(public_id=response.json()["id"])
    assert session.ip_hash == ip_hash("127.0.0.1")


def test_session_ids_never_reach_the_logs(server, default_assistant):
    session_id = httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]
    for _ in range(2):  # 204, then 404: Django logs the path of the second
        httpx.delete(f"{server.url}/api/v1/sessions/{session_id}")

    assert server.wait_for_output("Not Found: /api/v1/sessions/<id>")
    assert server.wait_for_output('"DELETE /api/v1/sessions/<id> HTTP/1.1" 404')
    assert session_id not in "".join(server.output)


def test_admin_searches_for_a_session_id_never_reach_the_logs(server, default_assistant):
    session_id = httpx.post(f"{server.url}/api/v1/sessions", json={}).json()["id"]
    # Staff look a conversation up by the id a visitor gave them (here not logged in: the
    # admin redirects to its login page, with the search in the `next` URL too).
    login = httpx.get(
        f"{server.url}/admin/conversations/session/",
        params={"q": session_id},
        follow_redirects=True,
    )
    assert login.status_code == 200

    assert server.wait_for_output('"GET /admin/conversations/session/?q=<redacted> HTTP/1.1" 302')
    # As it was sent (percent-encoded inside `next`): redaction decodes nothing it writes.
    assert server.wait_for_output(
        "GET /admin/login/?next=/admin/conversations/session/%3Fq%3D<redacted>"
    )
    assert session_id not in "".join(server.output)

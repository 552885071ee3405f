"""Request bodies over their route's cap are refused before they are read (chatkit/bodies.py).

Django's ASGI handler reads a whole body before anything else runs, spooling it to a
temporary file past 2.5 MB: a 2 GiB upload was written to disk, then answered 413. Through a
real uvicorn, raw sockets send bodies that never end and watch the server's open temporary
files while they do; a scripted ASGI client checks the edges (exactly at the cap, one byte
over, a prefix to strip).
"""

import json
import select
import socket
from http.client import HTTPResponse
from pathlib import Path

import pytest

from chatkit.bodies import BodyLimit
from conversations.models import Session
from tests.helpers import raw_post

CHUNK = 64 * 1024
ENDLESS = {
    "length": "Content-Length: 2147483648\r\n",  # 2 GiB, never all sent
    "chunked": "Transfer-Encoding: chunked\r\n",  # a chunk after another, no last one
}


def send_budget() -> int:
    """What a client can have sent before the server read it: both ends' socket buffers."""
    largest = [
        int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
        for name in ("tcp_rmem", "tcp_wmem")
    ]
    return sum(largest) + 4 * 1024 * 1024  # and Django's 2.5 MB in memory, with room to spare


def chunked(*parts: bytes, last: bool = True) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return body + b"0\r\n\r\n" if last else body


@pytest.fixture(scope="module")
def server(live_server_factory):
    return live_server_factory()


def send_until_answered(server, path: str, framing: str) -> HTTPResponse:
    """POST a body without end to `path` until the server answers; fail if, meanwhile, it
    opened a temporary file. The answer keeps the connection (`answer.socket`) open."""
    frame = b"x" * CHUNK if framing == "length" else chunked(b"x" * CHUNK, last=False)
    before = server.temp_files()  # none, unless an earlier test left the server spooling
    sock = raw_post(server.port, path, b"", ENDLESS[framing])
    try:
        sock.setblocking(False)
        pending, sent, spooled, budget = b"", 0, 0, send_budget()
        while sent < budget:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break  # the answer (or the connection's end) is here
            assert writable, f"after {sent} bytes the server neither reads on nor answers"
            spooled = max(spooled, server.temp_files() - before)
            if spooled:
                break
            pending = pending or frame
            try:
                done = sock.send(pending)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed the connection
            pending, sent = pending[done:], sent + done
        assert spooled == 0, f"the server wrote the body to disk ({sent} bytes sent)"
        assert sent < budget, f"the server read {sent} bytes without answering"
        sock.setblocking(True)
        sock.settimeout(10)
        answer = HTTPResponse(sock)
        answer.begin()
    except BaseException:
        sock.close()
        raise
    answer.socket = sock
    return answer


def connection_ends(sock: socket.socket) -> bool:
    """Whether the server closes the connection (rather than read the rest of the body)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/sessions", "application/json"),
        ("/health", "application/json"),  # a probe: GET only, yet Django read the body first
        ("/admin/login/", "text/plain; charset=utf-8"),
    ],
)
def test_an_endless_body_is_413_with_nothing_written_to_disk(server, path, content_type, framing):
    answer = send_until_answered(server, path, framing)
    with answer.socket:
        assert answer.status == 413
        assert answer.getheader("Content-Type") == content_type
        body = answer.read()
        if content_type == "application/json":
            assert json.loads(body)["error"]["code"] == "payload_too_large"
        assert answer.getheader("Connection") == "close"
        assert connection_ends(answer.socket)
    assert server.temp_files() == 0
    assert "Exception in ASGI application" not in "".join(server.output)


def test_a_chunked_body_within_the_cap_is_accepted(server, default_assistant):
    body = json.dumps({"metadata": {"page": "/pricing"}}).encode()
    sock = raw_post(
        server.port,
        "/api/v1/sessions",
        chunked(body[:10], body[10:]),
        "Transfer-Encoding: chunked\r\n",
    )
    with sock:
        sock.settimeout(10)
        answer = HTTPResponse(sock)
        answer.begin()
        assert answer.status == 201, answer.read()
        created = json.loads(answer.read())
    assert Session.objects.get(public_id=created["id"]).metadata == {"page": "/pricing"}


# --- The wrapper alone, driven by a scripted ASGI client -------------------------------------

API_CAP, ADMIN_CAP = 100, 1000


@pytest.fixture(autouse=True)
def caps(settings):
    settings.CHATKIT_MAX_BODY_BYTES = API_CAP
    settings.CHATKIT_ADMIN_MAX_BODY_BYTES = ADMIN_CAP


class Client:
    """Sends the scripted messages as the request, then leaves; records the answer."""

    def __init__(self, *messages: dict):
        self.messages = list(messages)
        self.asked = 0
        self.answer: list[dict] = []

    async def receive(self) -> dict:
        self.asked += 1
        return self.messages.pop(0) if self.messages else {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.answer.append(message)

    @property
    def status(self) -> int | None:
        return self.answer[0]["status"] if self.answer else None

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.answer[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.answer[1:])


class Django:
    """Stands in for Django behind the wrapper: reads the body as it would, answers 200."""

    def __init__(self):
        self.scope = self.receive = None
        self.body = b""

    async def __call__(self, scope, receive, send):
        self.scope, self.receive = scope, receive
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(
    path: str, *, length: int | None = None, root_path: str = "", http_version: str = "1.1"
) -> dict:
    headers = [(b"host", b"testserver")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    elif http_version != "2":
        headers.append((b"transfer-encoding", b"chunked"))
    return {
        "type": "http",
        "http_version": http_version,
        "method": "POST",
        "path": root_path + path,
        "root_path": root_path,
        "headers": headers,
    }


def part(size: int, *, more: bool) -> dict:
    return {"type": "http.request", "body": b"x" * size, "more_body": more}


async def serve(scope: dict, client: Client) -> Django:
    django = Django()
    await BodyLimit(django)(scope, client.receive, client.send)
    return django


async def test_a_declared_length_at_the_cap_is_handed_on():
    client = Client(part(API_CAP, more=False))
    django = await serve(request("/api/v1/sessions", length=API_CAP), client)
    assert client.status == 200
    assert django.body == b"x" * API_CAP


async def test_a_declared_length_one_byte_over_the_cap_is_413_unread():
    client = Client(part(API_CAP + 1, more=False))
    django = await serve(request("/api/v1/sessions", length=API_CAP + 1), client)
    assert client.asked == 0 and django.scope is None
    assert client.status == 413
    assert client.headers[b"connection"] == b"close"
    assert json.loads(client.body) == {
        "error": {"code": "payload_too_large", "message": "The request body is too large."}
    }


async def test_a_chunked_body_at_the_cap_reaches_django_with_its_length():
    client = Client(part(60, more=True), part(API_CAP - 60, more=False))
    django = await serve(request("/api/v1/sessions"), client)
    assert client.status == 200
    assert django.body == b"x" * API_CAP
    headers = dict(django.scope["headers"])
    assert headers[b"content-length"] == str(API_CAP).encode()
    assert b"transfer-encoding" not in headers
    # Django goes on listening for the client leaving, through the server.
    assert await django.receive() == {"type": "http.disconnect"}


async def test_a_chunked_body_one_byte_over_the_cap_is_413_and_read_no_further():
    client = Client(part(60, more=True), part(API_CAP - 59, more=True), part(CHUNK, more=True))
    django = await serve(request("/api/v1/sessions"), client)
    assert django.scope is None
    assert client.status == 413
    assert client.asked == 2


async def test_a_body_without_a_length_over_http2_is_capped_too():
    client = Client(part(API_CAP, more=True), part(1, more=False))
    django = await serve(request("/api/v1/sessions", http_version="2"), client)
    assert django.scope is None and client.status == 413


async def test_a_client_leaving_mid_body_gets_no_answer():
    client = Client(part(60, more=True), {"type": "http.disconnect"})
    django = await serve(request("/api/v1/sessions"), client)
    assert django.scope is None and client.answer == []


async def test_a_bodiless_get_goes_straight_through():
    scope = {**request("/api/v1/sessions/x"), "method": "GET", "headers": []}
    client = Client({"type": "http.request", "body": b"", "more_body": False})
    django = Django()
    await BodyLimit(django)(scope, client.receive, client.send)
    assert django.scope is scope and django.receive == client.receive


@pytest.mark.parametrize("root_path", ["", "/chat"])  # `uvicorn --root-path /chat`
@pytest.mark.parametrize(
    ("path", "length", "status", "answer"),
    [
        ("/api/v1/sessions", API_CAP + 1, 413, {"error": {"code": "payload_too_large"}}),
        ("/api/chat", API_CAP + 1, 413, {"error": "The request body is too large."}),
        ("/health", API_CAP + 1, 413, {"error": {"code": "payload_too_large"}}),
        ("/admin/login/", ADMIN_CAP, 200, None),
        ("/admin/login/", ADMIN_CAP + 1, 413, b"The request body is too large.\n"),
        ("/", ADMIN_CAP + 1, 413, b"The request body is too large.\n"),
    ],
)
async def test_the_cap_and_the_answer_follow_the_route(root_path, path, length, status, answer):
    client = Client(part(length, more=False))
    await serve(request(path, length=length, root_path=root_path), client)
    assert client.status == status
    if isinstance(answer, bytes):
        assert client.headers[b"content-type"] == b"text/plain; charset=utf-8"
        assert client.body == answer
    elif answer is not None:
        assert client.headers[b"content-type"] == b"application/json"
        error = json.loads(client.body)
        if isinstance(answer["error"], dict):
            error["error"].pop("message")
        assert error == answer

"""The project's ASGI handler driven by a scripted client: visitors leaving at awkward moments.

A real uvicorn cannot be made to lose a visitor at an exact point; an ASGI client written
for the purpose can: it sends the request, then says `http.disconnect` when told to.
"""

import asyncio
import json

import pytest
from asgiref.sync import markcoroutinefunction
from prometheus_client import REGISTRY

from chatkit.asgi import ChatKitASGIHandler
from conversations.models import Message, Session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_executor_connections"),
]


def open_streams() -> float:
    """The `chatkit_open_streams` gauge, as /metrics would show it."""
    value = REGISTRY.get_sample_value("chatkit_open_streams")
    assert value is not None, "chatkit_open_streams is not registered"
    return value


class Visitor:
    """An ASGI client posting one streamed message; it leaves once `gone` is set."""

    def __init__(self, session: Session, root_path: str = ""):
        self.body = json.dumps({"content": "hi", "stream": True}).encode()
        self.root_path = root_path
        self.path = f"{root_path}/api/v1/sessions/{session.public_id}/messages"
        self.gone = asyncio.Event()
        self.received: list[dict] = []
        self._asked = 0

    @property
    def scope(self) -> dict:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": self.root_path,
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }

    async def receive(self) -> dict:
        self._asked += 1
        if self._asked == 1:
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        self.received.append(message)


class HoldResponses:
    """Test middleware: keeps each response until the test lets it go (it never does)."""

    async_capable, sync_capable = True, False
    reached: asyncio.Event

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        HoldResponses.reached.set()
        await asyncio.Event().wait()
        return response


@pytest.mark.parametrize("root_path", ["", "/chat"])  # served under a prefix, too
async def test_a_visitor_leaving_before_the_first_byte_leaves_no_reply_in_flight(
    fake_llm, session, settings, root_path
):
    # The view has opened the turn and returned its stream; the response is still on its way
    # out through the middleware when the visitor goes. Django then never sends it, nor
    # closes it; the handler ends the turn.
    settings.MIDDLEWARE = ["tests.test_asgi_handler.HoldResponses", *settings.MIDDLEWARE]
    HoldResponses.reached = asyncio.Event()
    visitor = Visitor(session, root_path)

    async def leave_when_held() -> None:
        await HoldResponses.reached.wait()
        visitor.gone.set()

    leaving = asyncio.ensure_future(leave_when_held())
    await ChatKitASGIHandler()(visitor.scope, visitor.receive, visitor.send)
    await leaving

    assert visitor.received == []  # not a byte
    reply = await Message.objects.aget(session=session, seq=2)
    assert (reply.status, reply.content) == ("interrupted", "")
    assert fake_llm.requests == []  # the model was never asked


async def test_a_visitor_lost_while_the_stream_waits_to_send_stops_the_turn_at_once(
    fake_llm, session
):
    # The visitor stops reading; uvicorn's send() waits for the socket to drain, and then
    # the connection is lost. The model must not go on writing for nobody.
    fake_llm.configure(reply_tokens=400, itl=0.01)
    visitor = Visitor(session)
    stuck = asyncio.Event()

    async def send(message: dict) -> None:
        visitor.received.append(message)
        if sum(m["type"] == "http.response.body" for m in visitor.received) == 3:
            visitor.gone.set()
            await stuck.wait()  # never: the socket does not drain

    open_before = open_streams()
    await ChatKitASGIHandler()(visitor.scope, visitor.receive, send)

    reply = await Message.objects.aget(session=session, seq=2)
    assert reply.status == "interrupted"
    assert 0 < len(reply.content.split()) < 400
    assert await asyncio.to_thread(fake_llm.wait_for_disconnect, 5)  # upstream cancelled
    assert open_streams() == open_before

"""While the process drains (chatkit.draining, set by `manage.py serve` on SIGTERM), a turn that
still arrives (on a keep-alive connection) is refused: 503 `server_shutdown` with Retry-After,
nothing stored. Turns cut off by the shutdown are tested on a real server (test_shutdown_live)."""

import pytest

from chatkit import draining
from tests.helpers import post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def shutting_down():
    draining.begin(30)
    yield
    draining.reset()


@pytest.mark.parametrize("stream", [False, True])
def test_a_turn_arriving_while_the_server_drains_is_503(api, session, shutting_down, stream):
    response = post_json(
        api, f"/api/v1/sessions/{session.public_id}/messages", {"content": "Hi", "stream": stream}
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == {
        "code": "server_shutdown",
        "message": "The server is restarting; try again in a moment.",
        "retryable": True,
    }
    assert not session.messages.exists()


def test_a_seed_chat_arriving_while_the_server_drains_is_503(api, session, shutting_down):
    response = post_json(api, "/api/chat", {"sessionId": session.public_id, "message": "Hi"})

    assert response.status_code == 503
    assert response.json() == {"error": "The server is restarting; try again in a moment."}
    assert not session.messages.exists()


def test_draining_starts_once():
    draining.begin(30)
    try:
        first = draining.deadline()
        draining.begin(0)
        assert draining.deadline() == first
    finally:
        draining.reset()

"""Answers that carry a conversation's text say `Cache-Control: no-store`: no browser cache or
proxy keeps a copy of what a visitor wrote. (A stream says `no-cache`: tests/test_stream.py.)"""

import pytest

from tests.factories import conversation, reply, visitor
from tests.helpers import post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def talk(assistant):
    return conversation(assistant, visitor("My address is 1 Main St"), reply("Thanks"))


def test_reading_a_conversation_is_never_stored(api, talk):
    response = api.get(f"/api/v1/sessions/{talk.public_id}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_a_reply_answered_whole_is_never_stored(api, talk):
    response = post_json(api, f"/api/v1/sessions/{talk.public_id}/messages", {"content": "Hi"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"


def test_the_seed_chats_reply_is_never_stored(api, talk):
    response = post_json(api, "/api/chat", {"sessionId": talk.public_id, "message": "Hi"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_feedback_answers_with_the_message_never_stored(api, talk):
    response = post_json(
        api, f"/api/v1/sessions/{talk.public_id}/messages/2/feedback", {"rating": "up"}
    )
    assert response.status_code == 200 and response.json()["content"] == "Thanks"
    assert response["Cache-Control"] == "no-store"


def test_an_assistants_public_config_may_be_cached(api, assistant):
    response = api.get("/api/v1/assistants/default")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")

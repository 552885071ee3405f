"""What the database and the model validators refuse."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from conversations import policy
from conversations.exceptions import OriginNotAllowed
from conversations.models import Message, new_session_id
from tests.factories import assistant_build

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "origins",
    [
        "https://shop.example",  # a string, not a list
        [1],
        ["shop.example"],
        ["https://shop.example/path"],
        ["*"],
    ],
)
def test_allowed_origins_must_be_a_list_of_origins(origins):
    with pytest.raises(ValidationError) as raised:
        assistant_build(allowed_origins=origins).full_clean()
    assert "allowed_origins" in raised.value.error_dict


@pytest.mark.parametrize("prompts", ["abc", [""], [3], ["x" * 201], ["q"] * 7])
def test_starter_prompts_must_be_a_short_list_of_texts(prompts):
    with pytest.raises(ValidationError) as raised:
        assistant_build(starter_prompts=prompts).full_clean()
    assert "starter_prompts" in raised.value.error_dict


def test_valid_assistant_settings_pass():
    assistant_build(
        allowed_origins=["https://shop.example", "http://localhost:8000"],
        starter_prompts=["Where is my order?"],
    ).full_clean()


def test_origin_check_ignores_junk_stored_outside_the_validators():
    stored = assistant_build(allowed_origins=[1, "https://shop.example", "https://blog.example"])
    policy.origin_check(visitor_from("https://shop.example"), stored)
    with pytest.raises(OriginNotAllowed):
        policy.origin_check(visitor_from("https://other.example"), stored)


def visitor_from(origin: str) -> policy.Visitor:
    return policy.Visitor(origin=origin, own_host="chat.example", ip="", ip_hash="")


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 2.5},
        {"temperature": -0.1},
        {"max_output_tokens": 0},
        {"context_messages": 0},
        {"privacy_url": "javascript:alert(1)"},
        {"privacy_url": "/privacy"},
    ],
)
def test_the_database_refuses_out_of_range_assistant_settings(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        assistant_build(**fields).save()


def test_the_database_refuses_feedback_on_visitor_messages(session):
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(session=session, seq=1, role="user", feedback_rating="up")


def test_the_database_refuses_duplicate_sequence_numbers(session):
    Message.objects.create(session=session, seq=1, role="user")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(session=session, seq=1, role="assistant")


def test_the_database_allows_one_reply_in_flight_per_session(session):
    Message.objects.create(session=session, seq=1, role="assistant", status="streaming")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(session=session, seq=2, role="assistant", status="streaming")


def test_a_session_shows_as_its_number_never_its_id_nor_its_title(session):
    session.title = "My IBAN is DE89 3704"
    assert str(session) == f"Conversation {session.pk}"
    assert len(new_session_id()) == 32

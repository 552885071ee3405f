"""The admin as staff see it: transcripts read-only, text never markup, ids never shown."""

import pytest
from django.contrib.auth import get_user_model

from conversations.models import Message

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_a_conversation_shows_markup_as_text(staff_client, session):
    Message.objects.create(session=session, seq=1, role="user", content=MARKUP)
    Message.objects.create(session=session, seq=2, role="assistant", content=MARKUP)

    page = staff_client.get(f"/admin/conversations/session/{session.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert MARKUP not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_the_session_id_is_never_shown_but_can_be_searched(staff_client, session):
    session.title = "Order question"
    session.save()
    listing = staff_client.get("/admin/conversations/session/").content.decode()
    detail = staff_client.get(f"/admin/conversations/session/{session.pk}/change/")
    assert "Order question" in listing
    assert session.public_id not in listing
    assert session.public_id not in detail.content.decode()

    found = staff_client.get("/admin/conversations/session/", {"q": session.public_id})
    assert "Order question" in found.content.decode()
    partial = staff_client.get("/admin/conversations/session/", {"q": session.public_id[:8]})
    assert "Order question" not in partial.content.decode()


def test_messages_cannot_be_edited_or_added(staff_client, session):
    Message.objects.create(session=session, seq=1, role="user", content="hi")
    html = staff_client.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()
    assert 'name="messages-0-content"' not in html  # shown as text, not a field
    assert 'id="messages-empty"' not in html  # no blank row to add one
    assert 'name="messages-0-DELETE"' not in html

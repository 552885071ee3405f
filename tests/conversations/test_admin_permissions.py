"""Who may do what in the conversation admin: reviewers read and export, only those with the
delete permission delete, and people who are not staff get nothing at all."""

import pytest

from conversations.models import Message, Session
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS as LIST
from tests.helpers import ADMIN_OVERVIEW as OVERVIEW
from tests.helpers import REVIEWERS, admin_page_of, staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def talk(assistant):
    return conversation(
        assistant,
        visitor("Where is my parcel?"),
        reply("On its way."),
        title="Where is my parcel?",
    )


@pytest.fixture
def reviewer(client, django_user_model):
    client.force_login(
        staff_member(django_user_model, "reviewer", groups=[REVIEWERS], is_staff=True)
    )
    return client


def action(client, name: str, session: Session, **extra):
    data = {"action": name, "_selected_action": [session.pk], "index": 0, **extra}
    return client.post(LIST, data)


def test_a_reviewer_lists_searches_reads_and_sees_the_overview(reviewer, talk):
    listing = reviewer.get(LIST)
    assert listing.status_code == 200 and "Where is my parcel?" in listing.content.decode()
    found = reviewer.get(LIST, {"q": "parcel"})
    assert "Where is my parcel?" in found.content.decode()
    assert "Where is my parcel?" not in reviewer.get(LIST, {"q": "refund"}).content.decode()

    page = reviewer.get(admin_page_of(talk))
    assert page.status_code == 200
    assert "On its way." in page.content.decode()
    assert reviewer.get(OVERVIEW).status_code == 200
    assert OVERVIEW in reviewer.get("/admin/").content.decode()
    # Assistants too, read-only.
    assert (
        reviewer.get(f"/admin/conversations/assistant/{talk.assistant.pk}/change/").status_code
        == 200
    )


def test_a_reviewer_exports(reviewer, talk):
    for fmt in ["jsonl", "csv"]:
        response = action(reviewer, f"export_{fmt}", talk)
        assert response.status_code == 200
        assert response.streaming


def test_a_reviewer_cannot_change_or_delete(reviewer, talk):
    listing = reviewer.get(LIST).content.decode()
    assert 'value="delete_selected"' not in listing
    assert 'value="export_csv"' in listing

    assert reviewer.post(admin_page_of(talk), {"title": "Changed"}).status_code == 403
    assert reviewer.get(f"{LIST}{talk.pk}/delete/").status_code == 403
    assert reviewer.post(f"{LIST}{talk.pk}/delete/", {"post": "yes"}).status_code == 403
    refused = action(reviewer, "delete_selected", talk, post="yes")
    assert refused.status_code == 302  # back to the list: the action is not one of theirs
    assert "No action selected." in reviewer.get(LIST).content.decode()
    assistant_page = f"/admin/conversations/assistant/{talk.assistant.pk}/change/"
    assert reviewer.post(assistant_page, {"name": "Renamed"}).status_code == 403

    talk.refresh_from_db()
    assert talk.title == "Where is my parcel?"
    assert talk.messages.count() == 2


@pytest.mark.parametrize("is_staff", [False, True])
def test_without_staff_status_and_permission_nothing_is_shown(
    client, django_user_model, talk, is_staff
):
    client.force_login(staff_member(django_user_model, "visitor", is_staff=is_staff))
    for path in [LIST, admin_page_of(talk), OVERVIEW]:
        response = client.get(path)
        if is_staff:  # staff, but no permission on conversations
            assert response.status_code == 403, path
        else:
            assert response.status_code == 302, path
            assert response["Location"].startswith("/admin/login/")
    exported = action(client, "export_jsonl", talk)
    assert exported.status_code in (302, 403)
    assert not exported.streaming
    assert OVERVIEW not in client.get("/admin/", follow=True).content.decode()


def test_anonymous_visitors_are_sent_to_the_login(client, talk):
    for path in [LIST, admin_page_of(talk), OVERVIEW]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_a_superuser_deletes_conversations_with_their_messages(admin_client, assistant, talk):
    other = conversation(assistant, visitor("keep me"), title="Keep")

    confirm = action(admin_client, "delete_selected", talk)
    assert confirm.status_code == 200
    assert "Are you sure you want to delete the selected conversation?" in confirm.content.decode()
    assert talk.public_id not in confirm.content.decode()
    done = action(admin_client, "delete_selected", talk, post="yes")

    assert done.status_code == 302
    assert not Session.objects.filter(pk=talk.pk).exists()
    assert not Message.objects.filter(session_id=talk.pk).exists()
    assert Session.objects.filter(pk=other.pk).exists()


def test_a_superuser_deletes_one_conversation_from_its_page(admin_client, talk):
    assert admin_client.post(f"{LIST}{talk.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Message.objects.filter(session_id=talk.pk).exists()


def test_the_confirmation_counts_what_goes_rather_than_listing_it(admin_client, talk):
    confirm = action(admin_client, "delete_selected", talk).content.decode()
    assert "1 conversation(s) and their 2 message(s)" in confirm
    assert "On its way." not in confirm  # no message listed one by one


def test_a_conversation_with_a_reply_being_written_is_not_deleted_under_it(admin_client, assistant):
    busy = conversation(assistant, visitor("Quick!"), reply("", status="streaming"))
    idle = conversation(assistant, visitor("Bye"), reply("Bye!"))

    assert admin_client.post(f"{LIST}{busy.pk}/delete/", {"post": "yes"}).status_code == 403
    data = {"action": "delete_selected", "_selected_action": [busy.pk, idle.pk], "post": "yes"}
    done = admin_client.post(LIST, data, follow=True)

    assert "1 of them had a reply being written and were kept" in done.content.decode()
    assert Session.objects.filter(pk=busy.pk).exists()
    assert not Session.objects.filter(pk=idle.pk).exists()


def test_a_deleted_conversation_leaves_no_visitor_text_in_the_admin_log(admin_client, talk):
    from django.contrib.admin.models import LogEntry

    admin_client.post(f"{LIST}{talk.pk}/delete/", {"post": "yes"})

    assert LogEntry.objects.get().object_repr == f"Conversation {talk.pk}"
    assert "parcel" not in admin_client.get("/admin/").content.decode()


def test_deleting_a_conversation_returns_to_the_list_it_came_from(admin_client, talk):
    done = admin_client.post(
        f"{LIST}{talk.pk}/delete/?_changelist_filters=q%3Dparcel", {"post": "yes"}
    )

    assert done.status_code == 302
    assert done["Location"] == f"{LIST}?q=parcel"
    assert not Session.objects.filter(pk=talk.pk).exists()

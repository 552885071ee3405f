"""Each staff action in the admin leaves one audit event: who, what, which conversation (by
database id), from where (a keyed hash of the IP)."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from conversations import policy, services
from conversations.models import Assistant, Session
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS as LIST
from tests.helpers import admin_page_of, staff_member

pytestmark = pytest.mark.django_db

IP = "198.51.100.23"
ASSISTANTS = "/admin/conversations/assistant/"


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


@pytest.fixture
def staff(django_user_model):
    """A superuser's browser, signed in, at a known address."""
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(REMOTE_ADDR=IP)
    client.force_login(user)
    return client


@pytest.fixture
def talk(assistant):
    return conversation(assistant, visitor("Where is my parcel?"), reply("On its way."))


def test_viewing_a_transcript_is_recorded_with_who_and_from_where(staff, talk, django_user_model):
    assert staff.get(admin_page_of(talk)).status_code == 200

    [event] = events("transcript_view")
    assert event.conversation == talk.pk
    assert (event.actor_type, event.actor) == ("staff", "root")
    assert event.actor_id == django_user_model.objects.get(username="root").pk
    assert event.ip_hash == policy.ip_hash(IP)
    assert IP not in str(event.__dict__)
    assert talk.public_id not in str(event.__dict__)


def test_an_export_is_recorded_with_its_filter_and_row_count(staff, assistant, talk):
    other = conversation(assistant, visitor("Hello"))
    data = {"action": "export_csv", "_selected_action": [talk.pk, other.pk], "index": 0}

    response = staff.post(LIST + "?has_error=no", data)

    assert response.status_code == 200
    [event] = events("export")
    assert event.details["format"] == "csv"
    assert event.details["filter"] == {"has_error": "no"}
    assert event.details["rows"] == 2
    assert event.details["conversations"] == sorted([talk.pk, other.pk])


def test_an_export_of_everything_the_filter_selects_records_the_filter(staff, assistant, talk):
    conversation(assistant, visitor("Hello"))
    data = {"action": "export_jsonl", "_selected_action": [talk.pk], "index": 0}

    staff.post(LIST + f"?q={talk.public_id}", data | {"select_across": "1"})

    [event] = events("export")
    assert event.details["rows"] == 1
    assert event.details["filter"] == {"q": "[session id]"}
    assert event.details["selected"] == "all matching the filter"
    assert talk.public_id not in str(event.details)


def test_deleting_a_conversation_from_its_page_is_recorded(staff, talk):
    pk = talk.pk
    response = staff.post(admin_page_of(talk).replace("change", "delete"), {"post": "yes"})

    assert response.status_code == 302 and not Session.objects.filter(pk=pk).exists()
    [event] = events("delete")
    assert event.conversation == pk
    assert event.details == {"conversations": [pk]}


def test_deleting_conversations_from_the_list_records_each_of_them(staff, assistant, talk):
    other = conversation(assistant, visitor("Hello"))
    data = {"action": "delete_selected", "_selected_action": [talk.pk, other.pk], "post": "yes"}

    staff.post(LIST, data)

    [event] = events("delete")
    assert sorted(event.details["conversations"]) == sorted([talk.pk, other.pk])
    assert event.details["in_flight"] == 0
    assert Session.objects.count() == 0


def test_a_search_is_recorded_with_session_ids_masked(staff, talk):
    staff.get(LIST, {"q": f"parcel {talk.public_id}"})

    [event] = events("search")
    assert event.details == {"term": "parcel [session id]"}


def test_showing_the_list_without_a_search_records_no_search(staff, talk):
    staff.get(LIST)
    staff.get(LIST, {"has_error": "no"})

    assert events("search") == []


def test_adding_changing_and_deleting_an_assistant_is_recorded(staff):
    form = {
        "name": "Sales",
        "slug": "sales",
        "is_active": "on",
        "system_prompt": "You sell things.",
        "temperature": "0.7",
        "max_output_tokens": "500",
        "context_messages": "10",
        "daily_token_budget": "0",
        "accent_color": "#2563eb",
        "starter_prompts": "",
        "allowed_origins": "",
        "identity_mode": "off",
    }
    assert staff.post(ASSISTANTS + "add/", form).status_code == 302
    sales = Assistant.objects.get(slug="sales")
    changed = form | {"system_prompt": "You sell shoes.", "temperature": "0.2"}
    assert staff.post(f"{ASSISTANTS}{sales.pk}/change/", changed).status_code == 302
    assert staff.post(f"{ASSISTANTS}{sales.pk}/delete/", {"post": "yes"}).status_code == 302

    [added] = events("assistant_add")
    assert added.details["changes"]["slug"] == {"old": None, "new": "sales"}
    [change] = events("assistant_change")
    assert change.details["assistant"] == sales.pk
    assert change.details["changes"] == {
        "system_prompt": {"old": "You sell things.", "new": "You sell shoes."},
        "temperature": {"old": 0.7, "new": 0.2},
    }
    [deleted] = events("assistant_delete")
    assert deleted.details == {"assistants": [{"assistant": sales.pk, "slug": "sales"}]}


def test_signing_in_and_failing_to_are_recorded(django_user_model):
    staff_member(django_user_model, "ada", is_staff=True)
    browser = Client(REMOTE_ADDR=IP)

    browser.post("/admin/login/", {"username": "ada", "password": "wrong"})
    browser.post("/admin/login/", {"username": "ada", "password": "pw"})

    [failed] = events("login_failed")
    assert (failed.actor, failed.actor_id, failed.ip_hash) == ("ada", None, policy.ip_hash(IP))
    assert "wrong" not in str(failed.details)
    [login] = events("login")
    user = django_user_model.objects.get(username="ada")
    assert (login.actor, login.actor_id, login.ip_hash) == ("ada", user.pk, policy.ip_hash(IP))


def test_a_record_survives_its_user_and_its_conversation(staff, talk, django_user_model):
    pk = talk.pk
    staff.get(admin_page_of(talk))
    talk.delete()
    django_user_model.objects.filter(username="root").delete()

    [event] = events("transcript_view")
    assert (event.conversation, event.actor) == (pk, "root")


def test_the_chat_api_records_nothing(api, assistant):
    response = api.post("/api/v1/sessions", {}, content_type="application/json")

    assert response.status_code == 201
    assert AuditEvent.objects.count() == 0


def test_a_search_refused_for_lack_of_permission_is_not_recorded(client, django_user_model):
    client.force_login(staff_member(django_user_model, "nobody", is_staff=True))

    assert client.get(LIST, {"q": "parcel"}).status_code == 403
    assert events("search") == []


def test_generating_an_identity_secret_is_recorded_without_the_secret(staff, assistant):
    services.identity_secret_rotate(assistant=assistant)  # a first one, to be replaced
    response = staff.post(
        ASSISTANTS, {"action": "identity_secret_generate", "_selected_action": [assistant.pk]}
    )
    assert response.status_code == 302
    assistant.refresh_from_db()

    [change] = events("assistant_change")
    assert change.details["assistant"] == assistant.pk
    changes = change.details["changes"]
    assert changes["identity_secret"] == {"old": "[secret]", "new": "[secret]"}
    assert changes["identity_secret_previous"] == {"old": "", "new": "[secret]"}
    assert "identity_rotated_at" in changes
    assert assistant.identity_secret not in repr(change.details)
    assert assistant.identity_secret_previous not in repr(change.details)

"""What the audit log keeps of a search term and of an assistant's changes: no session id,
no secret."""

import pytest

from audit.models import AuditEvent
from audit.services import audit_record, field_changes, mask_session_ids
from conversations.ids import new_session_id


def test_every_session_id_in_a_search_term_is_masked():
    ids = [new_session_id() for _ in range(50)]
    for public_id in ids:
        term = f'refund "{public_id}" please,{public_id}'
        assert mask_session_ids(term) == 'refund "[session id]" please,[session id]'


def test_ids_of_other_lengths_and_shapes_are_masked_too():
    assert mask_session_ids("a1b2c3d4e5f6g7h8") == "[session id]"  # 16, the shortest
    assert mask_session_ids("ALLUPPERCASELETTERSONLY") == "[session id]"
    assert mask_session_ids("lowercase-with-dash1") == "[session id]"


def test_ordinary_words_are_kept():
    term = "Internationalization problems with order 12345 and telecommunications"
    assert mask_session_ids(term) == term


def test_changes_list_each_changed_field_with_old_and_new_values():
    before = {"name": "Sales", "temperature": 0.7, "starter_prompts": ["Hi"]}
    after = {"name": "Sales", "temperature": 0.2, "starter_prompts": ["Hi", "Ship?"]}

    assert field_changes(before=before, after=after) == {
        "temperature": {"old": 0.7, "new": 0.2},
        "starter_prompts": {"old": ["Hi"], "new": ["Hi", "Ship?"]},
    }


def test_a_secret_field_is_recorded_as_changed_without_its_values():
    old, new = "s" * 43, "t" * 43
    before = {"identity_secret": old, "identity_secret_previous": ""}
    after = {"identity_secret": new, "identity_secret_previous": old}

    changes = field_changes(before=before, after=after)

    assert changes == {
        "identity_secret": {"old": "[secret]", "new": "[secret]"},
        "identity_secret_previous": {"old": "", "new": "[secret]"},
    }
    assert old not in str(changes) and new not in str(changes)


@pytest.mark.django_db
def test_a_command_is_recorded_as_the_os_user(monkeypatch):
    monkeypatch.setenv("USER", "ops-on-call")
    monkeypatch.setenv("LOGNAME", "ops-on-call")

    event = audit_record(action=AuditEvent.Action.PURGE)

    event.refresh_from_db()
    assert (event.actor_type, event.actor, event.actor_id) == ("cli", "ops-on-call", None)

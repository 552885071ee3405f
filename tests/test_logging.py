"""The log filter: no session id, nor anything staff searched for, reaches a log line."""

import pytest

from chatkit.logging import redact
from conversations.models import new_session_id

ID = new_session_id()


@pytest.mark.parametrize(
    "line",
    [
        f'"DELETE /api/v1/sessions/{ID} HTTP/1.1" 404',
        f"Not Found: /api/v1/sessions/{ID}/messages",
        f'"GET /admin/conversations/session/?q={ID} HTTP/1.1" 200',
        f'"GET /admin/login/?next=/admin/conversations/session/%3Fq%3D{ID} HTTP/1.1" 200',
        f'"GET /admin/conversations/session/7/change/?_changelist_filters=q%3D{ID} HTTP/1.1"',
        f'"GET /admin/login/?next=/admin/x/%3F_changelist_filters%3Dq%253D{ID} HTTP/1.1"',
        f"someone quoted {ID} in a message",
    ],
)
def test_session_ids_are_masked_however_they_are_encoded(line):
    assert ID not in redact(line)
    assert ID.lower() not in redact(line).lower()


def test_search_terms_are_masked_too():
    line = '"GET /admin/login/?next=/admin/conversations/session/%3Fq%3DJane%2BDoe HTTP/1.1"'
    assert "Jane" not in redact(line)
    assert "q=<redacted>" in redact(line)


def test_lines_with_nothing_to_hide_are_left_alone():
    line = '"GET /static/widget/demo.js?v=100%25 HTTP/1.1" 200'
    assert redact(line) == line

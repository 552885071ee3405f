"""The logs: no session id, nor anything staff searched for, reaches a log line; and nothing
logged (a URL, what a visitor wrote, an exception) can forge a line of its own."""

import io
import logging
import re

import httpx
import pytest

from chatkit.logging import redact
from conversations.models import new_session_id
from tests.helpers import post_json

ID = new_session_id()
FORGED = "2026-11-30 09:00:00,000 CRITICAL django.security: FORGED"
# What may not reach a text log line raw: controls (C0, DEL, C1), line/paragraph separators.
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture
def text_log():
    """What the configured console handler (text format, our filter) writes meanwhile."""
    console = next(h for h in logging.getLogger("django").handlers if h.name == "console")
    written = io.StringIO()
    earlier = console.setStream(written)
    yield written
    console.setStream(earlier)


def lines_with(text: str, log: io.StringIO) -> list[str]:
    return [line for line in log.getvalue().split("\n") if text in line]


# --- Redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "mask"),
    [
        (f'"DELETE /api/v1/sessions/{ID} HTTP/1.1" 404', "<id>"),
        (f"Not Found: /api/v1/sessions/{ID}/messages", "<id>"),
        (f'"GET /admin/conversations/session/?q={ID} HTTP/1.1" 200', "<redacted>"),
        (
            f'"GET /admin/login/?next=/admin/conversations/session/%3Fq%3D{ID} HTTP/1.1" 200',
            "<redacted>",
        ),
        (
            f'"GET /admin/conversations/session/7/change/?_changelist_filters=q%3D{ID} HTTP/1.1"',
            "<redacted>",
        ),
        (
            f'"GET /admin/login/?next=/admin/x/%3F_changelist_filters%3Dq%253D{ID} HTTP/1.1"',
            "<redacted>",
        ),
        (f'"GET /admin/login/?next=%2Fapi%2Fv1%2Fsessions%2F{ID}%2Fmessages HTTP/1.1"', "<id>"),
        (f'"GET /admin/login/?next=%252fapi%252fv1%252fsessions%252f{ID} HTTP/1.1"', "<id>"),
        (f'"GET /admin/login/?next=%2Fx%2F%3Fsession%3D{ID}%26o%3D1 HTTP/1.1"', "<id>"),
        (f'"GET /admin/login/?next=%2Fx%2F%253Fsession%253D{ID} HTTP/1.1"', "<id>"),
        (f"someone quoted {ID} in a message", "<id>"),
    ],
)
def test_session_ids_are_masked_however_they_are_encoded(line, mask):
    assert redact(line) == line.replace(ID, mask)


def test_search_terms_are_masked_too():
    line = '"GET /admin/login/?next=/admin/x/%3Fq%3DJane%2BDoe%26o%3D1 HTTP/1.1"'
    assert redact(line) == '"GET /admin/login/?next=/admin/x/%3Fq%3D<redacted>%26o%3D1 HTTP/1.1"'


def test_redaction_decodes_nothing_it_writes():
    line = f'"GET /api/v1/sessions/{ID}?x=%0a{FORGED}%0d%1b[2J%00%25%E2%80%A8 HTTP/1.1" 404'
    assert redact(line) == line.replace(ID, "<id>")


def test_lines_with_nothing_to_hide_are_left_alone():
    line = '"GET /static/widget/demo.js?v=100%25 HTTP/1.1" 200'
    assert redact(line) == line


# --- Forged lines -------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["%0a", "%0d", "%1b", "%00"])
def test_a_path_cannot_forge_a_log_line(api, text_log, escape):
    # `%25` + escape: uvicorn hands Django the path decoded once, so `%250a` arrives as `%0a`.
    forged = FORGED.replace(" ", "%20")
    response = api.get(f"/api/v1/sessions/{ID}%25{escape[1:]}{forged}")
    assert response.status_code == 404

    [line] = lines_with("FORGED", text_log)
    assert line.endswith(f" django.request: Not Found: /api/v1/sessions/<id>{escape}{FORGED}")
    assert not RAW_CONTROL.search(text_log.getvalue())


def test_a_query_string_cannot_forge_a_line_in_the_access_log(live_server_factory):
    server = live_server_factory(LOG_FORMAT="text")
    forged = FORGED.replace(" ", "%20")
    escapes = ["%0a", "%1b", "%00"]
    for escape in escapes:
        httpx.get(f"{server.url}/health?x={escape}{forged}&y={ID}")
    assert server.wait_for_output("FORGED", count=len(escapes))
    server.stop()  # the output is complete

    logged = "".join(server.output)
    for escape in escapes:  # each on one line, as it was sent
        assert f'"GET /health?x={escape}{forged}&y=<id> HTTP/1.1" 200' in logged
    assert logged.count("FORGED") == len(escapes)
    assert ID not in logged and not RAW_CONTROL.search(logged)


def test_what_a_visitor_writes_cannot_forge_a_log_line(api, session, fake_llm, settings, text_log):
    settings.CHATKIT_LOG_CONTENT = True
    question = f"see %0a{FORGED} %1b[2J %00 {ID}"
    path = f"/api/v1/sessions/{session.public_id}/messages"
    assert post_json(api, path, {"content": question}).status_code == 201

    [line] = lines_with("turn ended", text_log)
    assert f'question="see %0a{FORGED} %1b[2J %00 <id>"' in line
    assert not RAW_CONTROL.search(text_log.getvalue())


def test_control_characters_in_content_are_escaped(api, session, fake_llm, settings, text_log):
    settings.CHATKIT_LOG_CONTENT = True
    fake_llm.configure(reply="One\u2028two\x85three\x7f")
    path = f"/api/v1/sessions/{session.public_id}/messages"
    assert post_json(api, path, {"content": "Hi\u2029there\x9b"}).status_code == 201

    [line] = lines_with("turn ended", text_log)
    assert 'question="Hi\\u2029there\\x9b"' in line
    assert 'reply="One\\u2028two\\x85three\\x7f"' in line
    assert not RAW_CONTROL.search(text_log.getvalue())


def test_every_part_of_a_record_is_escaped_in_the_text_format(text_log):
    logger = logging.getLogger("chatkit.tests\x1b[8m")
    logger.warning("one\n%s", "two\r\tthree\x00\x1b[2J\x7f\x85\u2028\u2029")

    [line] = text_log.getvalue().splitlines()
    assert line.endswith(
        " WARNING chatkit.tests\\x1b[8m: one\\ntwo\\r\\tthree\\x00\\x1b[2J\\x7f\\x85\\u2028\\u2029"
    )


def test_an_exception_keeps_its_traceback_but_cannot_forge_a_line(text_log):
    try:
        try:
            raise ValueError(f"inner\n{FORGED}")
        except ValueError as error:
            raise RuntimeError(f"outer\r\n{FORGED}\x1b[2J") from error
    except RuntimeError:
        logging.getLogger("chatkit.tests").exception("it failed")

    lines = text_log.getvalue().split("\n")
    assert lines[0].endswith(" ERROR chatkit.tests: it failed")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith('  File "')
    assert f"ValueError: inner\\n{FORGED}" in lines
    assert "The above exception was the direct cause of the following exception:" in lines
    assert f"RuntimeError: outer\\r\\n{FORGED}\\x1b[2J" in lines
    assert not any(line.startswith(FORGED) for line in lines)
    assert not RAW_CONTROL.search(text_log.getvalue())

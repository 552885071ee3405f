"""Signed-in visitors (issue 13, part 1): the host site's token, checked by the admission gate,
and conversations that belong to the visitor it names. Through the real API client."""

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from conversations import identity, services
from conversations.models import Assistant, Message, Session
from tests.conversations.test_admin import rows
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS, post_json

SUB = "user-42"


@pytest.fixture
def signed(assistant):
    """The `default` assistant, in `optional` mode with a secret."""
    assistant.identity_mode = Assistant.IdentityMode.OPTIONAL
    assistant.save()
    services.identity_secret_rotate(assistant=assistant)
    assistant.refresh_from_db()
    return assistant


@pytest.fixture
def required(signed):
    signed.identity_mode = Assistant.IdentityMode.REQUIRED
    signed.save()
    return signed


def token(assistant, sub=SUB, *, key=None, lifetime=600, algorithm="HS256", **claims) -> str:
    """A token as the host site's server signs it (PyJWT), `lifetime` seconds long."""
    now = int(time.time())
    payload = {"sub": sub, "aud": assistant.slug, "exp": now + lifetime, "iat": now, **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key or assistant.identity_secret, algorithm=algorithm)


def bearer(value: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {value}"}


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] == code
    assert body["message"]
    if status == 401:
        assert response["WWW-Authenticate"] == "Bearer"
    return body


def start(api, auth: dict | None = None, **body):
    return post_json(api, "/api/v1/sessions", body, **(auth or {}))


def started(api, auth: dict | None = None) -> str:
    response = start(api, auth)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def unsigned(payload: dict, header: dict) -> str:
    """A JWT put together by hand (what PyJWT would not sign)."""

    def part(value: dict) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part(header)}.{part(payload)}"


# --- The token ------------------------------------------------------------------------------


def test_a_valid_token_makes_the_conversation_the_visitors(api, signed):
    auth = bearer(token(signed, name="Ada", email="ada@example.com"))
    public_id = started(api, auth)
    session = Session.objects.get(public_id=public_id)
    assert (session.visitor_sub, session.visitor_name, session.visitor_email) == (
        SUB,
        "Ada",
        "ada@example.com",
    )


def test_without_a_token_the_conversation_is_anonymous(api, signed):
    session = Session.objects.get(public_id=started(api))
    assert session.visitor_sub == ""


def test_a_forged_signature_is_token_invalid(api, signed):
    forged = token(signed, key="x" * 43)
    error(start(api, bearer(forged)), 401, "token_invalid")
    assert not Session.objects.exists()


def test_alg_none_is_token_invalid(api, signed):
    now = int(time.time())
    payload = {"sub": SUB, "aud": signed.slug, "exp": now + 60}
    none = unsigned(payload, {"alg": "none", "typ": "JWT"}) + "."
    error(start(api, bearer(none)), 401, "token_invalid")


def test_a_public_key_algorithm_is_token_invalid(api, signed):
    # RS/HS confusion: an RS256 header with an HMAC of the secret must not pass as either.
    now = int(time.time())
    payload = {"sub": SUB, "aud": signed.slug, "exp": now + 60}
    head = unsigned(payload, {"alg": "RS256", "typ": "JWT"})
    mac = hmac.new(signed.identity_secret.encode(), head.encode(), hashlib.sha256).digest()
    confused = head + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    error(start(api, bearer(confused)), 401, "token_invalid")
    hs512 = token(signed, algorithm="HS512", key=signed.identity_secret * 2)
    error(start(api, bearer(hs512)), 401, "token_invalid")


def test_an_expired_token_is_token_expired(api, signed):
    expired = token(signed, lifetime=-120)  # past the leeway
    error(start(api, bearer(expired)), 401, "token_expired")


def test_a_token_within_the_leeway_is_accepted(api, signed):
    assert started(api, bearer(token(signed, lifetime=-5)))


def test_a_token_without_exp_is_token_invalid(api, signed):
    no_exp = jwt.encode({"sub": SUB, "aud": signed.slug}, signed.identity_secret)
    error(start(api, bearer(no_exp)), 401, "token_invalid")


def test_a_token_living_longer_than_the_maximum_is_refused(api, signed, settings):
    settings.CHATKIT_IDENTITY_TOKEN_MAX_AGE = 3600
    error(start(api, bearer(token(signed, lifetime=7200, iat=None))), 401, "token_invalid")
    # Within the maximum from now, but issued long before: its whole life is too long.
    old = int(time.time()) - 7000
    error(start(api, bearer(token(signed, iat=old))), 401, "token_invalid")
    assert started(api, bearer(token(signed, lifetime=3500)))


def test_a_token_for_another_assistant_is_token_invalid(api, signed):
    body = error(start(api, bearer(token(signed, aud="other"))), 401, "token_invalid")
    assert "aud" in body["message"]
    no_aud = jwt.encode({"sub": SUB, "exp": int(time.time()) + 60}, signed.identity_secret)
    error(start(api, bearer(no_aud)), 401, "token_invalid")


@pytest.mark.parametrize("sub", [None, "", 42, "   "])
def test_a_token_without_a_string_sub_is_token_invalid(api, signed, sub):
    now = int(time.time())
    payload = {"aud": signed.slug, "exp": now + 60}
    if sub is not None:
        payload["sub"] = sub
    encoded = jwt.encode(payload, signed.identity_secret, algorithm="HS256")
    error(start(api, bearer(encoded)), 401, "token_invalid")


def test_garbage_is_token_invalid(api, signed):
    error(start(api, bearer("not.a.jwt")), 401, "token_invalid")


def test_an_assistant_without_a_secret_refuses_tokens(api, assistant):
    assistant.identity_mode = Assistant.IdentityMode.OPTIONAL
    assistant.save()
    forged = jwt.encode({"sub": SUB, "aud": "default", "exp": int(time.time()) + 60}, "k" * 32)
    error(start(api, bearer(forged)), 401, "token_invalid")
    assert started(api)  # anonymous visitors still come in


def test_mode_off_ignores_the_token(api, signed):
    signed.identity_mode = Assistant.IdentityMode.OFF
    signed.save()
    public_id = started(api, bearer("not.a.jwt"))
    assert Session.objects.get(public_id=public_id).visitor_sub == ""
    assert started(api, bearer(token(signed)))  # a valid one is no error either
    assert not Session.objects.exclude(visitor_sub="").exists()


def test_assistant_config_says_the_identity_mode(api, required):
    assert api.get("/api/v1/assistants/default").json()["identity"] == "required"


# --- Rotation -------------------------------------------------------------------------------


def test_the_previous_secret_is_valid_within_the_grace_period_only(api, signed, settings):
    settings.CHATKIT_IDENTITY_ROTATION_GRACE_HOURS = 24
    old_secret = signed.identity_secret
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        services.identity_secret_rotate(assistant=signed)
        signed.refresh_from_db()
        assert signed.identity_secret != old_secret
        assert signed.identity_secret_previous == old_secret

        traveller.shift(timedelta(hours=23))
        assert started(api, bearer(token(signed, key=old_secret)))
        assert started(api, bearer(token(signed)))

        traveller.shift(timedelta(hours=2))
        error(start(api, bearer(token(signed, key=old_secret))), 401, "token_invalid")
        assert started(api, bearer(token(signed)))


def test_a_second_rotation_drops_the_first_secret(api, signed):
    first = signed.identity_secret
    services.identity_secret_rotate(assistant=signed)
    services.identity_secret_rotate(assistant=signed)
    signed.refresh_from_db()
    error(start(api, bearer(token(signed, key=first))), 401, "token_invalid")


def test_a_secret_is_32_random_bytes():
    secret = identity.secret_new()
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert secret != identity.secret_new()


# --- Required mode ----------------------------------------------------------------------------


def test_required_mode_refuses_a_new_anonymous_conversation(api, required):
    error(start(api), 401, "token_required")
    assert started(api, bearer(token(required)))


def test_required_mode_refuses_anonymous_requests_on_an_anonymous_conversation(api, required):
    session = conversation(required, visitor("Hi"), reply("Hello"))
    error(api.get(f"/api/v1/sessions/{session.public_id}"), 401, "token_required")
    # With a token it keeps working: it stays anonymous.
    response = api.get(f"/api/v1/sessions/{session.public_id}", **bearer(token(required)))
    assert response.status_code == 200


def test_required_mode_applies_to_the_seed_routes_in_their_shape(api, required):
    response = post_json(api, "/api/create-session")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert isinstance(response.json()["error"], str)
    session = conversation(required)
    response = post_json(api, "/api/chat", {"sessionId": session.public_id, "message": "hi"})
    assert response.status_code == 401
    assert isinstance(response.json()["error"], str)


# --- Ownership --------------------------------------------------------------------------------


@pytest.fixture
def owned(signed):
    """A conversation of SUB's, with a reply to rate."""
    return conversation(signed, visitor("Hi"), reply("Hello"), visitor_sub=SUB)


def routes(public_id: str):
    """Every route that names a conversation: (method, path, body)."""
    base = f"/api/v1/sessions/{public_id}"
    return [
        ("get", base, None),
        ("post", f"{base}/messages", {"content": "hi"}),
        ("post", f"{base}/messages", {"content": "hi", "stream": True}),
        ("post", f"{base}/messages/2/feedback", {"rating": "up"}),
        ("delete", base, None),
    ]


def call(api, method: str, path: str, body, auth: dict | None = None):
    if method == "post":
        return post_json(api, path, body, **(auth or {}))
    return getattr(api, method)(path, **(auth or {}))


def test_the_id_alone_does_not_open_a_signed_in_visitors_conversation(api, owned):
    for method, path, body in routes(owned.public_id):
        error(call(api, method, path, body), 404, "not_found")
    assert Message.objects.filter(session=owned).count() == 2


def test_another_visitors_token_gets_404_on_every_route(api, owned, signed):
    other = bearer(token(signed, "someone-else"))
    for method, path, body in routes(owned.public_id):
        error(call(api, method, path, body, other), 404, "not_found")
    assert Session.objects.filter(pk=owned.pk).exists()
    assert Message.objects.filter(session=owned).count() == 2


def test_the_owner_reaches_their_conversation_on_every_route(api, owned, signed, fake_llm):
    auth = bearer(token(signed))
    # The stream opens the turn as the JSON message does (the same `turn_open`): left out,
    # as a stream needs a live server (its refusals are the cross-user test's).
    owner_routes = [r for r in routes(owned.public_id) if not (r[2] or {}).get("stream")]
    expected = [200, 201, 200, 204]
    for (method, path, body), status in zip(owner_routes, expected, strict=True):
        response = call(api, method, path, body, auth)
        assert response.status_code == status, (path, response.content)
    assert not Session.objects.filter(pk=owned.pk).exists()


def test_a_later_token_updates_the_visitors_name_and_email(api, owned, signed, fake_llm):
    auth = bearer(token(signed, name="Ada L.", email="ada@new.example"))
    response = post_json(
        api, f"/api/v1/sessions/{owned.public_id}/messages", {"content": "hi"}, **auth
    )
    assert response.status_code == 201
    owned.refresh_from_db()
    assert (owned.visitor_name, owned.visitor_email) == ("Ada L.", "ada@new.example")


def test_an_anonymous_conversation_stays_anonymous_when_the_visitor_signs_in(api, signed, fake_llm):
    public_id = started(api)
    auth = bearer(token(signed))
    response = post_json(api, f"/api/v1/sessions/{public_id}/messages", {"content": "hi"}, **auth)
    assert response.status_code == 201
    assert Session.objects.get(public_id=public_id).visitor_sub == ""
    # Still reached by its id alone, and listed nowhere.
    assert api.get(f"/api/v1/sessions/{public_id}").status_code == 200
    assert api.get("/api/v1/sessions", **auth).json()["sessions"] == []


def test_a_bad_token_on_an_anonymous_conversation_is_refused(api, signed):
    session = conversation(signed)
    response = api.get(f"/api/v1/sessions/{session.public_id}", **bearer("not.a.jwt"))
    error(response, 401, "token_invalid")


def test_an_expired_token_of_the_owner_is_token_expired_not_404(api, owned, signed):
    expired = bearer(token(signed, lifetime=-120))
    error(api.get(f"/api/v1/sessions/{owned.public_id}", **expired), 401, "token_expired")


# --- The list ---------------------------------------------------------------------------------


def test_the_list_needs_a_token(api, signed):
    error(api.get("/api/v1/sessions"), 401, "token_required")


def test_the_list_needs_identity_on(api, assistant):
    fake = jwt.encode({"sub": SUB, "aud": "default", "exp": int(time.time()) + 60}, "k" * 32)
    error(api.get("/api/v1/sessions", **bearer(fake)), 401, "token_required")


def test_the_list_pages_a_visitors_conversations_newest_activity_first(api, signed):
    now = timezone.now()
    mine = [
        conversation(signed, visitor_sub=SUB, title=f"t{n}", idle=timedelta(minutes=n))
        for n in range(25)
    ]
    conversation(signed, visitor_sub="someone-else")
    conversation(signed)  # anonymous
    other = Assistant.objects.create(slug="other", name="Other", system_prompt=".")
    conversation(other, visitor_sub=SUB)
    # Two with the same last activity: the id breaks the tie, none is skipped.
    Session.objects.filter(pk__in=[mine[20].pk, mine[21].pk]).update(last_activity_at=now)
    auth = bearer(token(signed))

    first = api.get("/api/v1/sessions?assistant=default", **auth)
    assert first.status_code == 200
    assert first["Cache-Control"] == "no-store"
    page = first.json()
    assert len(page["sessions"]) == 20
    assert set(page["sessions"][0]) == {
        "id",
        "assistant",
        "title",
        "created_at",
        "last_activity_at",
    }
    second = api.get(f"/api/v1/sessions?cursor={page['next']}", **auth).json()
    assert second["next"] is None

    listed = [s["id"] for s in page["sessions"] + second["sessions"]]
    expected = [Session.objects.get(pk=s.pk) for s in mine]
    expected.sort(key=lambda s: (s.last_activity_at, s.pk), reverse=True)
    assert listed == [s.public_id for s in expected]


@pytest.mark.parametrize("cursor", ["bm9wZQ", "0", "%FF", "MjAyNi0xMS0zMFQxMDowMDowMHwx"])
def test_a_cursor_not_made_here_is_404_like_a_malformed_id(api, signed, cursor):
    # The last: a cursor's shape ("<time>|<id>") with a time that has no zone.
    response = api.get(f"/api/v1/sessions?cursor={cursor}", **bearer(token(signed)))
    error(response, 404, "not_found")


@pytest.mark.parametrize("query", ["assistant=", "cursor=", "assistant=default&assistant=x"])
def test_a_blank_or_repeated_parameter_is_400(api, signed, query):
    response = api.get(f"/api/v1/sessions?{query}", **bearer(token(signed)))
    error(response, 400, "invalid")


def test_the_list_of_an_unknown_assistant_is_404(api, signed):
    response = api.get("/api/v1/sessions?assistant=nope", **bearer(token(signed)))
    error(response, 404, "not_found")


# --- Erasure ------------------------------------------------------------------------------------


def test_delete_session_user_erases_every_conversation_of_one_person(signed, capsys):
    other = Assistant.objects.create(slug="other", name="Other", system_prompt=".")
    theirs = [
        conversation(signed, visitor("Hi"), visitor_sub=SUB),
        conversation(other, visitor_sub=SUB),
    ]
    kept = [conversation(signed, visitor_sub="someone-else"), conversation(signed)]
    call_command("delete_session", "--user", SUB)
    assert "deleted 2 conversations" in capsys.readouterr().out
    assert not Session.objects.filter(pk__in=[s.pk for s in theirs]).exists()
    assert Session.objects.filter(pk__in=[s.pk for s in kept]).count() == 2


def test_delete_session_user_with_an_assistant_erases_only_there(signed, capsys):
    other = Assistant.objects.create(slug="other", name="Other", system_prompt=".")
    here = conversation(signed, visitor_sub=SUB)
    there = conversation(other, visitor_sub=SUB)
    call_command("delete_session", "--user", SUB, "--assistant", "other")
    assert Session.objects.filter(pk=here.pk).exists()
    assert not Session.objects.filter(pk=there.pk).exists()


def test_delete_session_user_of_an_unknown_assistant_fails(signed):
    with pytest.raises(CommandError):
        call_command("delete_session", "--user", SUB, "--assistant", "nope")


# --- CORS -----------------------------------------------------------------------------------------


def test_the_preflight_allows_the_authorization_header(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    response = api.options(
        "/api/v1/sessions",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert "authorization" in allowed


def test_the_preflight_of_another_origin_gets_no_cors_headers(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    response = api.options(
        "/api/v1/sessions",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert "Access-Control-Allow-Origin" not in response


# --- The admin ----------------------------------------------------------------------------------

ASSISTANTS = "/admin/conversations/assistant/"


@pytest.fixture
def visitors(signed):
    """A signed-in visitor's conversation and an anonymous one."""
    ada = conversation(
        signed,
        visitor("Hi"),
        title="ada's",
        visitor_sub="u-ada",
        visitor_name="Ada Lovelace",
        visitor_email="ada@example.com",
    )
    anonymous = conversation(signed, visitor("Hi"), title="anonymous")
    return ada, anonymous


def test_the_list_shows_the_visitor_in_one_column(admin_client, visitors):
    page = admin_client.get(ADMIN_CONVERSATIONS)
    shown = {row["title"]: row["visitor"] for row in rows(page)}
    assert shown == {"ada's": "u-adaAda Lovelaceada@example.com", "anonymous": "-"}
    content = page.content.decode()
    assert '<span class="one-line" title="ada@example.com">' in content


def test_the_list_has_no_visitor_column_while_no_assistant_signs_visitors_in(
    admin_client, assistant
):
    conversation(assistant, visitor("Hi"), title="one")
    assert "visitor" not in rows(admin_client.get(ADMIN_CONVERSATIONS))[0]


def test_the_list_filters_signed_in_and_anonymous_visitors(admin_client, visitors):
    signed_in = admin_client.get(ADMIN_CONVERSATIONS + "?signed_in=yes")
    assert [row["title"] for row in rows(signed_in)] == ["ada's"]
    anonymous = admin_client.get(ADMIN_CONVERSATIONS + "?signed_in=no")
    assert [row["title"] for row in rows(anonymous)] == ["anonymous"]


@pytest.mark.parametrize("term", ["u-ada", "Lovelace", "ada@example"])
def test_the_list_searches_by_visitor_id_name_and_email(admin_client, visitors, term):
    page = admin_client.get(ADMIN_CONVERSATIONS, {"q": term})
    assert [row["title"] for row in rows(page)] == ["ada's"]


def test_the_visitor_id_is_matched_exactly(admin_client, visitors):
    assert rows(admin_client.get(ADMIN_CONVERSATIONS, {"q": "u-ad"})) == []


def test_a_new_secret_is_shown_once_and_never_in_a_url(admin_client, assistant):
    response = admin_client.post(
        ASSISTANTS,
        {"action": "identity_secret_generate", "_selected_action": [assistant.pk]},
    )
    assert response.status_code == 302
    assert "secret" not in response["Location"].lower()
    assistant.refresh_from_db()
    secret = assistant.identity_secret
    assert len(secret) == 43
    assert secret not in response.cookies.output()

    shown = admin_client.get(response["Location"])
    assert secret in shown.content.decode()
    assert secret not in shown.cookies.output()  # the message was not carried in a cookie
    assert secret not in admin_client.get(ASSISTANTS).content.decode()
    change = admin_client.get(f"{ASSISTANTS}{assistant.pk}/change/").content.decode()
    assert secret not in change
    assert "Set, rotated at" in change


def test_the_change_page_says_how_to_get_a_secret_and_edits_the_mode(admin_client, assistant):
    page = admin_client.get(f"{ASSISTANTS}{assistant.pk}/change/").content.decode()
    assert "Not set" in page
    assert 'name="identity_mode"' in page
    assert 'name="identity_secret"' not in page


def test_rotating_shows_until_when_the_previous_secret_is_accepted(admin_client, signed):
    services.identity_secret_rotate(assistant=signed)
    page = admin_client.get(f"{ASSISTANTS}{signed.pk}/change/").content.decode()
    assert "the previous one is accepted until" in page

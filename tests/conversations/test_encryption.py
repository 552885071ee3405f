"""Encryption at rest: what the tables hold (read through SQL, and the SQLite file's bytes),
what the API, the exports and the admin show, the canary `serve` checks, and rotation."""

import json
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from conversations import encryption, selectors, services
from conversations.models import Assistant, EncryptionCanary, Message, Session
from conversations.services.encryption import CANARY_TEXT
from tests.conversations.test_admin_export import export, read
from tests.conversations.test_identity import bearer, token
from tests.conversations.test_migrations import migrated_back_to  # noqa: F401 (a fixture)
from tests.conversations.test_statements import turn
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_CONVERSATIONS, post_json
from tests.statements import database_work
from tests.test_serve import PRODUCTION, serve

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
SECRET = "my passport number is X1234567"


def raw_rows(table: str) -> list[tuple]:
    """Every row of `table` as the database holds it, bypassing the models."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
        return cursor.fetchall()


def raw_text() -> str:
    """Everything the conversation tables hold, as one text."""
    return repr(raw_rows(Message._meta.db_table)) + repr(raw_rows(Session._meta.db_table))


def raw_value(model, pk: int, name: str):
    quote = connection.ops.quote_name
    column = quote(model._meta.get_field(name).column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {quote(model._meta.db_table)} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


def chat(api, text: str, *, metadata: dict | None = None) -> str:
    response = post_json(api, "/api/v1/sessions", {"metadata": metadata or {}})
    assert response.status_code == 201, response.content
    session_id = response.json()["id"]
    posted = post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": text})
    assert posted.status_code == 201, posted.content
    return session_id


@pytest.fixture
def encrypted(settings):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]


# --- What is stored ------------------------------------------------------------------------


def test_a_turn_stores_no_plaintext_in_any_column(api, encrypted, assistant):
    session_id = chat(api, SECRET, metadata={"page": "checkout-secret-page"})
    reply_pk = Message.objects.get(session__public_id=session_id, seq=2).pk
    post_json(
        api,
        f"/api/v1/sessions/{session_id}/messages/2/feedback",
        {"rating": "down", "comment": "my comment is private"},
    )

    stored = raw_text()
    for plaintext in ("X1234567", "passport", "checkout-secret-page", "comment is private"):
        assert plaintext not in stored
    reply_text = Message.objects.get(pk=reply_pk).content
    assert reply_text and reply_text not in stored
    assert raw_value(Message, reply_pk, "content").startswith(f"fernet:{encryption.key_id(KEY_A)}:")


def test_with_the_key_the_api_returns_the_text_as_written(api, encrypted, assistant):
    session_id = chat(api, SECRET, metadata={"page": "checkout"})
    post_json(
        api,
        f"/api/v1/sessions/{session_id}/messages/2/feedback",
        {"rating": "down", "comment": "Too vague"},
    )

    body = api.get(f"/api/v1/sessions/{session_id}").json()

    user, answer = body["messages"]
    assert user["content"] == SECRET
    assert answer["content"] and answer["feedback"] == {"rating": "down", "comment": "Too vague"}
    session = Session.objects.get(public_id=session_id)
    assert (session.title, session.metadata) == (SECRET, {"page": "checkout"})


def test_the_seed_api_stores_sealed_text_and_answers_in_plaintext(
    api, encrypted, fake_llm, assistant
):
    fake_llm.configure(reply="Your order ships today.")
    session_id = post_json(api, "/api/create-session").json()["sessionId"]

    response = post_json(api, "/api/chat", {"sessionId": session_id, "message": SECRET})

    assert response.status_code == 200, response.content
    assert response.json()["response"] == "Your order ships today."
    stored = raw_text()
    assert "X1234567" not in stored and "ships today" not in stored
    assert [m.content for m in Message.objects.order_by("seq")] == [
        SECRET,
        "Your order ships today.",
    ]


def test_the_history_sent_to_the_model_is_the_plaintext(api, encrypted, fake_llm):
    session_id = chat(api, SECRET)
    post_json(api, f"/api/v1/sessions/{session_id}/messages", {"content": "And then?"})

    sent = [m["content"] for m in fake_llm.last_request["body"]["messages"]]
    assert sent[1:] == [
        SECRET,
        fake_llm.last_request["body"]["messages"][2]["content"],
        "And then?",
    ]
    assert SECRET in sent and not any(encryption.is_sealed(text) for text in sent)


@pytest.mark.django_db(transaction=True)
def test_the_database_file_holds_no_plaintext_of_text_written_encrypted(settings, api):
    """SQLite only: the file (and its write-ahead log) bytes; PostgreSQL's are not ours to read,
    and its tables are read through SQL above."""
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    Assistant.objects.get_or_create(slug="default", defaults={"name": "A", "system_prompt": "."})
    chat(api, SECRET)

    assert "X1234567" not in raw_text()
    if connection.vendor == "sqlite":
        name = Path(connection.settings_dict["NAME"])
        files = [p for p in (name, Path(f"{name}-wal"), Path(f"{name}-journal")) if p.exists()]
        assert files
        for path in files:
            assert b"X1234567" not in path.read_bytes()


def test_plaintext_that_looks_like_a_sealed_value_reads_back_as_typed(api, assistant):
    lookalike = f"fernet:{encryption.key_id(KEY_A)}:gAAAAABnotatoken"
    session = conversation(assistant, visitor(lookalike), reply("plain:kept"), title="plain:x")

    assert raw_value(Message, session.messages.get(seq=1).pk, "content") == "plain:" + lookalike
    assert [m.content for m in session.messages.order_by("seq")] == [lookalike, "plain:kept"]
    assert Session.objects.get(pk=session.pk).title == "plain:x"


def test_a_visitor_typing_a_lookalike_sees_it_with_encryption_on(api, encrypted, assistant):
    lookalike = "plain:fernet:00000000:whatever"
    session_id = chat(api, lookalike)

    assert api.get(f"/api/v1/sessions/{session_id}").json()["messages"][0]["content"] == lookalike


def test_without_encryption_text_is_stored_as_it_is(api, assistant):
    session_id = chat(api, SECRET)

    stored = raw_value(
        Message, Message.objects.get(session__public_id=session_id, seq=1).pk, "content"
    )
    assert stored == SECRET


def test_a_title_of_the_full_length_fits_its_column_sealed(encrypted, assistant):
    title = "€" * Session._meta.get_field("title").max_length  # 3 bytes a character
    session = Session.objects.create(assistant=assistant, title=title)

    assert Session.objects.get(pk=session.pk).title == title
    assert len(raw_value(Session, session.pk, "title")) <= encryption.sealed_length(len(title))


# --- The admin and the exports ------------------------------------------------------------


def test_exports_are_the_same_with_encryption_on(admin_client, settings, assistant):
    session = conversation(
        assistant,
        visitor(SECRET),
        reply("On its way.", feedback_rating="down", feedback_comment="Vague"),
        title=SECRET,
        metadata={"page": "checkout"},
    )
    jsonl, csv = (read(export(admin_client, fmt, [session])) for fmt in ("jsonl", "csv"))
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    rotate()
    assert "X1234567" not in raw_text()

    assert read(export(admin_client, "jsonl", [session])) == jsonl
    assert read(export(admin_client, "csv", [session])) == csv
    assert SECRET in jsonl and "Vague" in csv


def test_the_admin_transcript_shows_the_text(admin_client, encrypted, assistant):
    session = conversation(assistant, visitor(SECRET), reply("Noted."), title=SECRET)

    page = admin_client.get(f"{ADMIN_CONVERSATIONS}{session.pk}/change/")

    assert SECRET in page.content.decode()


def test_with_encryption_the_admin_searches_ids_and_says_text_is_not_searched(
    admin_client, encrypted, assistant
):
    session = conversation(assistant, visitor(SECRET), title=SECRET)

    by_text = admin_client.get(ADMIN_CONVERSATIONS, {"q": "passport"})
    by_id = admin_client.get(ADMIN_CONVERSATIONS, {"q": session.public_id})

    assert by_text.context["cl"].result_count == 0
    assert "cannot be searched" in by_text.content.decode()
    assert by_id.context["cl"].result_count == 1


# --- The canary ---------------------------------------------------------------------------


def test_the_first_start_with_keys_writes_the_canary(encrypted):
    assert services.encryption_canary_check() == []

    assert EncryptionCanary.objects.get().value == CANARY_TEXT
    assert encryption.is_sealed(
        raw_value(EncryptionCanary, EncryptionCanary.objects.get().pk, "value")
    )
    assert services.encryption_canary_check() == []


def test_there_is_one_canary(encrypted):
    services.encryption_canary_check()

    with pytest.raises(IntegrityError), transaction.atomic():
        EncryptionCanary.objects.create(id=2, value=CANARY_TEXT)


def test_serve_refuses_to_start_with_a_wrong_key(settings):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    services.encryption_canary_check()
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B]

    with pytest.raises(CommandError, match="lacks the key this database's text is encrypted"):
        call_command("serve", "--port", "1")


def test_serve_refuses_to_start_without_keys_once_text_is_encrypted(settings):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    services.encryption_canary_check()
    settings.CHATKIT_ENCRYPTION_KEYS = []

    with pytest.raises(CommandError, match="holds encrypted text but CHATKIT_ENCRYPTION_KEYS"):
        call_command("serve", "--port", "1")


def test_a_key_under_the_canarys_id_that_does_not_open_it_is_refused(settings):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    services.encryption_canary_check()
    # A token from another key, under the id of the configured one.
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B]
    forged = encryption.seal(CANARY_TEXT).split(":", 2)[2]
    stored = f"fernet:{encryption.key_id(KEY_A)}:{forged}"
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE conversations_encryptioncanary SET value = %s", [stored])

    assert "does not open this database's canary" in services.encryption_canary_check()[0]


def test_readiness_says_whether_the_keys_open_the_database(api, settings):
    assert "encryption" not in api.get("/health/ready").json()["checks"]  # off: nothing to say
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    services.encryption_canary_check()

    ready = api.get("/health/ready")
    assert (ready.status_code, ready.json()["checks"]["encryption"]) == (200, "ok")

    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B]  # an instance started with another key
    unready = api.get("/health/ready")
    assert unready.status_code == 503
    assert unready.json()["checks"]["encryption"].startswith("error: the encryption keys")
    assert encryption.key_id(KEY_A) not in unready.content.decode()


# --- Rotation -----------------------------------------------------------------------------


def rotate(batch_size: int = 2) -> str:
    out = StringIO()
    call_command("encryption_rotate", "--batch-size", str(batch_size), stdout=out)
    return out.getvalue()


def test_rotation_across_batches_leaves_no_row_under_the_old_key(settings, assistant):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    session = conversation(
        assistant, *[visitor(f"secret {n}") for n in range(1, 6)], title="t", metadata={"a": 1}
    )
    old, new = encryption.key_id(KEY_A), encryption.key_id(KEY_B)
    assert selectors.encrypted_rows_by_key()["conversations_message.content"] == {old: 5}

    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    report = rotate(batch_size=2)

    assert "conversations_message.content: 2 re-encrypted, up to id" in report
    assert "conversations_message.content: 5 re-encrypted" in report
    assert "0 values under other keys or in plaintext" in report
    counts = selectors.encrypted_rows_by_key()
    assert counts["conversations_message.content"] == {new: 5}
    assert counts["conversations_session.metadata"] == {new: 1}
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B]  # the old key dropped
    assert [m.content for m in session.messages.order_by("seq")] == [
        f"secret {n}" for n in range(1, 6)
    ]
    assert Session.objects.get(pk=session.pk).metadata == {"a": 1}


def test_enabling_encryption_encrypts_an_existing_plaintext_database(settings, assistant):
    session = conversation(
        assistant,
        visitor(SECRET),
        reply("Sure.", feedback_rating="up", feedback_comment="kind words"),
        title=SECRET,
        metadata={"page": "checkout"},
    )
    assert "X1234567" in raw_text()
    counts = selectors.encrypted_rows_by_key()
    assert counts["conversations_message.content"] == {selectors.PLAINTEXT: 2}

    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    report = rotate(batch_size=2)

    stored = raw_text()
    for plaintext in ("X1234567", "kind words", "checkout", "Sure."):
        assert plaintext not in stored
    assert "0 values under other keys or in plaintext" in report
    session = Session.objects.get(pk=session.pk)
    assert (session.title, session.metadata) == (SECRET, {"page": "checkout"})
    assert [(m.content, m.feedback_comment) for m in session.messages.order_by("seq")] == [
        (SECRET, ""),
        ("Sure.", "kind words"),
    ]


def test_rows_are_counted_by_the_key_that_encrypted_them(settings, assistant):
    conversation(assistant, visitor("plain one"), visitor(""))
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    conversation(assistant, visitor("under a"), visitor("under a too"))
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    conversation(assistant, visitor("under b"))

    counts = selectors.encrypted_rows_by_key()["conversations_message.content"]

    assert counts == {
        selectors.PLAINTEXT: 1,  # the empty message counts nowhere
        encryption.key_id(KEY_A): 2,
        encryption.key_id(KEY_B): 1,
    }
    report = rotate()
    assert "conversations_message.content: 3 re-encrypted, up to id" in report
    assert "conversations_message.content: 4 under primary key" in report


def test_a_row_written_during_rotation_is_kept(settings, assistant):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    session = conversation(assistant, *[visitor(f"m{n}") for n in range(1, 6)])
    last = session.messages.get(seq=5)
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B, KEY_A]

    def meanwhile(step):
        if step.column == "conversations_message.content" and step.rewritten == 2:
            Message.objects.filter(pk=last.pk).update(content="edited meanwhile")

    services.encryption_rotate(batch_size=2, progress=meanwhile)

    assert Message.objects.get(pk=last.pk).content == "edited meanwhile"
    assert selectors.encrypted_rows_by_key()["conversations_message.content"] == {
        encryption.key_id(KEY_B): 5
    }


def test_rotation_without_keys_is_refused(settings):
    settings.CHATKIT_ENCRYPTION_KEYS = []
    with pytest.raises(CommandError, match="no key to encrypt with"):
        rotate()


def test_a_wrong_key_never_reads_as_garbage(settings, assistant):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    session = conversation(assistant, visitor(SECRET))
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_B]

    with pytest.raises(encryption.KeyMissing):
        list(session.messages.values_list("content", flat=True))


def test_sealed_json_is_one_json_string(settings, assistant):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    session = Session.objects.create(assistant=assistant, metadata={"k": [1, "two"]})

    raw = raw_value(Session, session.pk, "metadata")
    assert encryption.is_sealed(json.loads(raw) if isinstance(raw, str) else raw)
    assert Session.objects.get(pk=session.pk).metadata == {"k": [1, "two"]}


# --- The hot path's cost ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_executor_connections")
async def test_an_encrypted_turn_costs_the_same_statements(fake_llm, settings, session):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    await turn(session, "hello")

    with database_work() as work:
        reply = await turn(session, SECRET)

    assert len(work.statements) <= 6, work.summary()
    assert work.checkouts <= 2 and work.transactions <= 2
    assert reply.content == (await Message.objects.aget(pk=reply.pk)).content


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_executor_connections")
async def test_a_turn_opens_no_history_it_has_already_read(
    fake_llm, settings, session, monkeypatch
):
    settings.CHATKIT_ENCRYPTION_KEYS = [KEY_A]
    await turn(session, "hello")
    await turn(session, SECRET)
    opened = []
    decrypt = Fernet.decrypt
    monkeypatch.setattr(
        Fernet, "decrypt", lambda self, token: opened.append(token) or decrypt(self, token)
    )

    await turn(session, "and again")

    assert opened == []
    sent = [m["content"] for m in fake_llm.last_request["body"]["messages"] if m["role"] == "user"]
    assert sent[-2:] == [SECRET, "and again"]


def test_a_tampered_value_is_refused_though_its_original_was_read():
    ring = encryption.keyring_for((KEY_A,))
    stored = encryption.seal(SECRET, ring=ring)
    assert encryption.unseal(stored, ring=ring) == SECRET
    last = stored[-5]
    tampered = stored[:-5] + ("A" if last != "A" else "B") + stored[-4:]

    with pytest.raises(encryption.InvalidToken):
        encryption.unseal(tampered, ring=ring)


def test_a_value_read_once_is_not_opened_without_its_key():
    stored = encryption.seal(SECRET, ring=encryption.keyring_for((KEY_A,)))
    assert encryption.unseal(stored, ring=encryption.keyring_for((KEY_A,))) == SECRET

    with pytest.raises(encryption.KeyMissing):
        encryption.unseal(stored, ring=encryption.keyring_for((KEY_B,)))


# --- The keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("not-a-key", "key 1 is not 44 characters"),
        (f"{KEY_A},{KEY_A[:-2]}", "key 2 is not 44 characters"),
        (f"{KEY_A},{KEY_A}", "lists a key twice"),
    ],
    ids=["not-a-key", "truncated", "repeated"],
)
def test_serve_refuses_malformed_keys_with_a_clear_message(keys, problem):
    refused = serve(**PRODUCTION, CHATKIT_ENCRYPTION_KEYS=keys)

    assert refused.returncode == 1
    assert "CHATKIT_ENCRYPTION_KEYS" in refused.stderr and problem in refused.stderr
    assert "Traceback" not in refused.stderr
    assert KEY_A not in refused.stderr  # a secret is never repeated


# --- The migration ------------------------------------------------------------------------


def test_stored_plaintext_that_looks_sealed_is_escaped_by_the_migration(migrated_back_to):  # noqa: F811
    apps = migrated_back_to(("conversations", "0008_session_next_seq"))
    assistant = apps.get_model("conversations", "Assistant").objects.create(
        slug="old", name="Old", system_prompt="Help."
    )
    session = apps.get_model("conversations", "Session").objects.create(
        assistant=assistant, title="fernet:typed by a visitor"
    )
    messages = apps.get_model("conversations", "Message").objects
    for seq, text in enumerate(["plain:hi", "fernet:abcd1234:xyz", "an ordinary fernet: word"], 1):
        messages.create(session=session, seq=seq, role="user", content=text)

    # The models as that migration leaves them (later ones add columns the current models
    # would read).
    apps = migrated_back_to(("conversations", "0010_encryption_at_rest_existing_text"))

    assert raw_value(Session, session.pk, "title") == "plain:fernet:typed by a visitor"
    assert apps.get_model("conversations", "Session").objects.get(pk=session.pk).title == (
        "fernet:typed by a visitor"
    )
    assert list(
        apps.get_model("conversations", "Message")
        .objects.filter(session_id=session.pk)
        .values_list("content", flat=True)
    ) == [
        "plain:hi",
        "fernet:abcd1234:xyz",
        "an ordinary fernet: word",
    ]


# --- Signed-in visitors ---------------------------------------------------------------------


def test_identity_secrets_and_visitors_names_and_emails_are_sealed(api, encrypted, assistant):
    assistant.identity_mode = Assistant.IdentityMode.OPTIONAL
    assistant.save()
    secret = services.identity_secret_rotate(assistant=assistant)
    assistant.refresh_from_db()
    signed_in = bearer(token(assistant, "u-ada", name="Ada Lovelace", email="ada@example.com"))
    response = post_json(api, "/api/v1/sessions", {}, **signed_in)
    assert response.status_code == 201, response.content
    session_id = response.json()["id"]
    posted = post_json(
        api, f"/api/v1/sessions/{session_id}/messages", {"content": "hello"}, **signed_in
    )
    assert posted.status_code == 201, posted.content  # the sealed secret verified the token

    stored = raw_text() + repr(raw_rows(Assistant._meta.db_table))
    for plaintext in (secret, "Ada Lovelace", "ada@example.com"):
        assert plaintext not in stored
    assert raw_value(Assistant, assistant.pk, "identity_secret").startswith("fernet:")
    # The visitor's id stays as it is: it is what the list and the admin look conversations up by.
    assert (
        raw_value(Session, Session.objects.get(public_id=session_id).pk, "visitor_sub") == "u-ada"
    )
    session = Session.objects.get(public_id=session_id)
    assert (session.visitor_name, session.visitor_email) == ("Ada Lovelace", "ada@example.com")


def test_with_encryption_the_admin_finds_a_visitor_by_exact_id_only(
    admin_client, encrypted, assistant
):
    session = conversation(assistant, visitor("hi"))
    Session.objects.filter(pk=session.pk).update(visitor_sub="u-ada")
    session.visitor_name = "Ada Lovelace"
    session.save(update_fields=["visitor_name"])

    assert admin_client.get(ADMIN_CONVERSATIONS, {"q": "u-ada"}).context["cl"].result_count == 1
    by_name = admin_client.get(ADMIN_CONVERSATIONS, {"q": "Lovelace"})
    assert by_name.context["cl"].result_count == 0
    assert "names and emails are encrypted" in by_name.content.decode()

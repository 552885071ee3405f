"""Data migrations, run forwards on data the migration before them left."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("conversations", "0007_abuse_protection")
NEXT_SEQ = ("conversations", "0008_session_next_seq")


@pytest.fixture
def migrated_back_to(transactional_db):
    """Migrate back to a migration (its models as `apps`); forwards to the latest after."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("conversations")

    def back_to(target):
        executor.migrate([target])
        executor.loader.build_graph()
        return executor.loader.project_state([target]).apps

    yield back_to
    executor.loader.build_graph()
    executor.migrate(latest)


def test_each_conversation_goes_on_after_its_last_message(migrated_back_to):
    apps = migrated_back_to(BEFORE)
    assistant = apps.get_model("conversations", "Assistant").objects.create(
        slug="old", name="Old", system_prompt="Help."
    )
    sessions = apps.get_model("conversations", "Session").objects
    talked, silent = sessions.create(assistant=assistant), sessions.create(assistant=assistant)
    messages = apps.get_model("conversations", "Message").objects
    for seq in (1, 2, 3, 8):  # a gap: what a deleted message or an old bug may leave
        messages.create(session=talked, seq=seq, role="user" if seq % 2 else "assistant")

    apps = migrated_back_to(NEXT_SEQ)

    next_seqs = dict(
        apps.get_model("conversations", "Session").objects.values_list("pk", "next_seq")
    )
    assert next_seqs == {talked.pk: 9, silent.pk: 1}

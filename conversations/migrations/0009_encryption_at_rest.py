"""Encryption at rest (conversations.encryption): the text columns become sealed fields (the
title's column grows to its sealed length; the others are text already) and a one-row table
holds the canary `serve` opens to check the key. Nothing is encrypted here: with
CHATKIT_ENCRYPTION_KEYS set, `manage.py encryption_rotate` encrypts what is stored."""

import conversations.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0008_session_next_seq"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="content",
            field=conversations.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="message",
            name="feedback_comment",
            field=conversations.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="session",
            name="metadata",
            field=conversations.fields.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="session",
            name="title",
            field=conversations.fields.EncryptedCharField(blank=True, max_length=100),
        ),
        migrations.CreateModel(
            name="EncryptionCanary",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("value", conversations.fields.EncryptedTextField()),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="encryption_canary_one_row"
                    )
                ],
            },
        ),
    ]

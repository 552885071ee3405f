"""Plaintext stored before encryption at rest that begins like a sealed value (`fernet:`) or
an escaped one (`plain:`) gets the `plain:` escape, as it would be written now: every stored
value then reads one way only (conversations.encryption). Rare: a visitor typing it."""

from django.db import migrations
from django.db.models import Q, Value
from django.db.models.functions import Concat, Substr

COLUMNS = {"message": ["content", "feedback_comment"], "session": ["title"]}
PREFIXES = ("fernet:", "plain:")


def escape(apps, schema_editor):
    for model_name, names in COLUMNS.items():
        model = apps.get_model("conversations", model_name)
        for name in names:
            starts = Q()
            for prefix in PREFIXES:
                starts |= Q(**{f"{name}__startswith": prefix})
            model.objects.filter(starts).update(**{name: Concat(Value("plain:"), name)})


def unescape(apps, schema_editor):
    for model_name, names in COLUMNS.items():
        model = apps.get_model("conversations", model_name)
        for name in names:
            model.objects.filter(**{f"{name}__startswith": "plain:"}).update(
                **{name: Substr(name, len("plain:") + 1)}
            )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0009_encryption_at_rest"),
    ]

    operations = [
        migrations.RunPython(escape, unescape),
    ]

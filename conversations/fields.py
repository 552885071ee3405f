"""Model fields whose values are sealed at rest when CHATKIT_ENCRYPTION_KEYS is set.

One mechanism for every encrypted column: declare it with one of these classes (a one-line
change from TextField, CharField or JSONField, plus its migration) and it is sealed on every
write that goes through the field (the ORM, `get_db_prep_save` in raw SQL), opened on every
read through the model, re-encrypted by `manage.py encryption_rotate` and counted by key:
both find the columns with `encrypted_fields()`.

A sealed value is not comparable: only `= ''` (empty) means anything in a filter. Lookups on
the text (`icontains`, trigram search, JSON keys) find nothing once it is sealed.
"""

import json
from typing import Any

from django.apps import apps
from django.db import models

from conversations import encryption


class EncryptedField:
    """Marks a field as sealed at rest (see the module's docstring)."""


class EncryptedTextField(EncryptedField, models.TextField):
    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encryption.seal(value) if isinstance(value, str) else value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return encryption.unseal(value) if isinstance(value, str) else value


class EncryptedCharField(EncryptedField, models.CharField):
    """`max_length` counts the text's characters (what forms and validators check); the
    column is as long as its sealed form needs (`encryption.sealed_length`)."""

    def db_type(self, connection: Any) -> str | None:
        column_type = connection.data_types["CharField"]
        data = {"max_length": encryption.sealed_length(self.max_length)}
        return column_type(data) if callable(column_type) else column_type % data

    def cast_db_type(self, connection: Any) -> str | None:
        return self.db_type(connection)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encryption.seal(value) if isinstance(value, str) else value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return encryption.unseal(value) if isinstance(value, str) else value


class EncryptedJSONField(EncryptedField, models.JSONField):
    """Sealed, the value is stored as one JSON string: the sealed JSON text of the value."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if hasattr(value, "resolve_expression"):
            return value
        if encryption.keyring().on:
            return encryption.seal(json.dumps(value, cls=self.encoder))
        if isinstance(value, str) and value.startswith((encryption.SEALED, encryption.ESCAPED)):
            return encryption.ESCAPED + value
        return value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        value = super().from_db_value(value, expression, connection)
        if isinstance(value, str):
            if encryption.is_sealed(value):
                return json.loads(encryption.unseal(value), cls=self.decoder)
            if value.startswith(encryption.ESCAPED):
                return value[len(encryption.ESCAPED) :]
        return value


def encrypted_fields() -> list[tuple[type[models.Model], models.Field]]:
    """Every sealed column of every installed model, as (model, field)."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedField)
    ]

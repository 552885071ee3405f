"""The "Conversation reviewers" group: staff who may read and export conversations, not change
or delete them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Conversation reviewers"
PERMISSIONS = ["view_session", "view_message", "view_assistant"]


def create_group(apps, schema_editor):
    # Permissions are normally created after `migrate` finishes; make sure they exist now.
    config = apps.get_app_config("conversations")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="conversations", codename__in=PERMISSIONS)
    )


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0002_default_assistant"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]

from django.db import migrations

SYSTEM_PROMPT = (
    "You are a helpful AI assistant for a sample website. Provide friendly, helpful "
    "responses to user questions about services, products, or general information."
)


def create_default_assistant(apps, schema_editor):
    Assistant = apps.get_model("conversations", "Assistant")
    Assistant.objects.get_or_create(
        slug="default",
        defaults={
            "name": "Assistant",
            "system_prompt": SYSTEM_PROMPT,
            "greeting": "Hi! How can I help you today?",
            "starter_prompts": [
                "What can you help me with?",
                "Tell me about your products",
                "How do I contact support?",
            ],
        },
    )


def remove_default_assistant(apps, schema_editor):
    Assistant = apps.get_model("conversations", "Assistant")
    Assistant.objects.filter(slug="default", sessions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [migrations.RunPython(create_default_assistant, remove_default_assistant)]

"""Assistants in the admin: every field editable and explained, bad values refused, and a link
to try the assistant on the demo page."""

import re
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from conversations.models import Assistant

pytestmark = pytest.mark.django_db

ADD = "/admin/conversations/assistant/add/"
EDITABLE = [
    "name",
    "slug",
    "is_active",
    "system_prompt",
    "model",
    "temperature",
    "max_output_tokens",
    "context_messages",
    "daily_token_budget",
    "unavailable_message",
    "greeting",
    "starter_prompts",
    "accent_color",
    "notice",
    "privacy_url",
    "allowed_origins",
    "identity_mode",
]


def form(**changes) -> dict:
    data = {
        "name": "Sales",
        "slug": "sales",
        "is_active": "on",
        "system_prompt": "You sell things.",
        "model": "llama3.2",
        "temperature": "0.3",
        "max_output_tokens": "300",
        "context_messages": "8",
        "daily_token_budget": "50000",
        "greeting": "Hi! Looking for something?",
        "starter_prompts": "What do you sell?\n\n  Do you ship abroad?  \n",
        "accent_color": "#112233",
        "notice": "Answers by an AI; a person reads every conversation.",
        "privacy_url": "https://shop.example/privacy",
        "allowed_origins": "https://shop.example\nhttp://localhost:8000\n",
        "identity_mode": "off",
    }
    return {key: value for key, value in {**data, **changes}.items() if value is not None}


def change_url(assistant: Assistant) -> str:
    return f"/admin/conversations/assistant/{assistant.pk}/change/"


def test_every_field_is_editable_and_explained(admin_client):
    page = admin_client.get(ADD).content.decode()
    for field in EDITABLE:
        assert f'name="{field}"' in page, field
        assert f'id="id_{field}_helptext"' in page, field


def test_an_assistant_is_created_with_lists_written_one_per_line(admin_client):
    response = admin_client.post(ADD, form(model="  llama3.2 "))

    assert response.status_code == 302
    sales = Assistant.objects.get(slug="sales")
    assert sales.starter_prompts == ["What do you sell?", "Do you ship abroad?"]
    assert sales.allowed_origins == ["https://shop.example", "http://localhost:8000"]
    assert (sales.model, sales.temperature, sales.max_output_tokens) == ("llama3.2", 0.3, 300)
    assert (sales.context_messages, sales.daily_token_budget) == (8, 50000)
    assert (sales.accent_color, sales.is_active) == ("#112233", True)
    assert sales.notice == "Answers by an AI; a person reads every conversation."
    assert sales.privacy_url == "https://shop.example/privacy"


def test_an_edit_shows_the_lists_one_per_line_and_keeps_them(admin_client, assistant):
    assistant.allowed_origins = ["https://shop.example", "https://blog.example"]
    assistant.starter_prompts = ["First?", "Second?"]
    assistant.save()

    page = admin_client.get(change_url(assistant)).content.decode()
    assert ">\nhttps://shop.example\nhttps://blog.example</textarea>" in page
    assert ">\nFirst?\nSecond?</textarea>" in page

    data = form(
        name=assistant.name,
        slug=assistant.slug,
        model="",
        starter_prompts="First?\nSecond?",
        allowed_origins="",
    )
    assert admin_client.post(change_url(assistant), data).status_code == 302
    assistant.refresh_from_db()
    assert assistant.model == ""  # blank: OPENAI_MODEL answers
    assert assistant.allowed_origins == []
    assert assistant.starter_prompts == ["First?", "Second?"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "2.01"),
        ("temperature", "-0.1"),
        ("allowed_origins", "https://shop.example/contact"),
        ("allowed_origins", "shop.example"),
        ("allowed_origins", "https://shop.example\njavascript:alert(1)"),
        ("model", "   "),
        ("accent_color", "blue"),
        ("privacy_url", "javascript:alert(1)"),
        ("privacy_url", "ftp://shop.example/privacy"),
        ("notice", "x" * 301),
        ("starter_prompts", "\n".join(f"Question {n}?" for n in range(7))),
        ("max_output_tokens", "0"),
        ("context_messages", "0"),
        ("slug", "not a slug"),
    ],
)
def test_bad_values_are_refused_with_a_message_at_the_field(admin_client, field, value):
    response = admin_client.post(ADD, form(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    page = response.content.decode()
    assert re.search(rf'<ul class="errorlist"[^>]*id="id_{field}_error"', page)
    assert not Assistant.objects.filter(slug="sales").exists()


def test_the_try_it_link_opens_the_demo_page_with_that_assistant(admin_client, assistant):
    link = '<a href="/?assistant=default" target="_blank" rel="noopener">Open the demo page</a>'

    assert link in admin_client.get("/admin/conversations/assistant/").content.decode()
    assert link in admin_client.get(change_url(assistant)).content.decode()
    demo = admin_client.get("/", {"assistant": "default"})
    assert demo.status_code == 200
    assert 'data-assistant="default"' in demo.content.decode()


def test_an_inactive_assistant_has_no_try_it_link(admin_client, assistant):
    assistant.is_active = False
    assistant.save()
    listing = admin_client.get("/admin/conversations/assistant/").content.decode()
    assert "?assistant=default" not in listing
    assert "Inactive: activate it to try it." in listing


def test_the_list_says_which_model_answers(admin_client, assistant):
    type(assistant).objects.create(slug="local", name="Local", system_prompt="-", model="qwen3")
    listing = admin_client.get("/admin/conversations/assistant/").content.decode()
    assert "(OPENAI_MODEL)" in listing  # the default assistant names no model
    assert "qwen3" in listing


def test_todays_spend_is_shown_beside_the_budget(admin_client, assistant):
    from conversations.models import DailySpend

    assistant.daily_token_budget = 20_000
    assistant.save()
    today = timezone.now().astimezone(UTC).date()
    DailySpend.objects.create(assistant=assistant, day=today, tokens=5_000)
    DailySpend.objects.create(assistant=assistant, day=today - timedelta(days=1), tokens=19_000)
    type(assistant).objects.create(slug="free", name="Free", system_prompt="-")

    listing = admin_client.get("/admin/conversations/assistant/").content.decode()
    assert "5,000 of 20,000 tokens (25%)" in listing
    assert "0 tokens (no budget)" in listing  # the unlimited one, nothing spent today
    page = admin_client.get(change_url(assistant)).content.decode()
    assert "5,000 of 20,000 tokens (25%)" in page

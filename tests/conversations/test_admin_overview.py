"""The admin's overview page: the last 30 days in numbers and server-drawn charts."""

import re
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from conversations.models import Assistant
from tests.factories import conversation, reply, visitor
from tests.helpers import ADMIN_OVERVIEW as OVERVIEW

pytestmark = pytest.mark.django_db


def at(day, hour: int, minute: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def sales(db):
    return Assistant.objects.create(slug="sales", name="Sales", system_prompt="Sell.")


@pytest.fixture
def month(assistant, sales, today):
    """Four conversations: two of them three days ago, one today, one too old to count."""
    conversation(
        assistant,
        visitor("Hi"),
        reply("Hello", prompt_tokens=10, completion_tokens=5, feedback_rating="up"),
        visitor("Price?"),
        reply("", status="error", error_code="timeout"),
        at=at(today, 9, 15),
    )
    three_days_ago = today - timedelta(days=3)
    conversation(
        assistant,
        visitor("Shipping?"),
        reply("3 days", prompt_tokens=20, completion_tokens=10, feedback_rating="down"),
        visitor("Thanks"),
        at=at(three_days_ago, 14, 30),
    )
    conversation(
        sales,
        visitor("Discount?"),
        reply("No.", prompt_tokens=100, completion_tokens=50),
        at=at(three_days_ago, 14, 45),
    )
    conversation(
        assistant,
        visitor("Old"),
        reply("Old", prompt_tokens=999, completion_tokens=999, feedback_rating="down"),
        at=at(today - timedelta(days=40), 9, 0),
    )


def test_the_numbers_of_the_last_30_days(admin_client, month, today):
    response = admin_client.get(OVERVIEW)

    assert response.status_code == 200
    numbers = response.context["overview"]
    days = {row["day"]: row for row in numbers["days"]}
    assert len(days) == 30
    assert min(days) == today - timedelta(days=29) and max(days) == today
    three_days_ago = days[today - timedelta(days=3)]
    assert (days[today]["conversations"], three_days_ago["conversations"]) == (1, 2)
    assert (days[today]["messages"], three_days_ago["messages"]) == (4, 5)
    assert (days[today]["tokens"], three_days_ago["tokens"]) == (15, 180)
    quiet = [row for day, row in days.items() if day not in (today, today - timedelta(days=3))]
    assert len(quiet) == 28
    assert {(r["conversations"], r["messages"], r["tokens"], r["errors"]) for r in quiet} == {
        (0, 0, 0, 0)
    }
    assert numbers["totals"]["conversations"] == 3
    assert numbers["totals"]["tokens"] == 195
    assert numbers["error_rate"] == 25.0  # 1 of 4 replies
    assert numbers["positive_feedback"] == 50.0  # 1 up, 1 down
    assert numbers["busiest_hours"] == [14, 9]  # 3 visitor messages at 14h, 2 at 9h
    assert dict(numbers["hours"])[14] == 3 and dict(numbers["hours"])[10] == 0

    page = response.content.decode()
    assert '<dd id="total-conversations">3</dd>' in page
    assert '<dd id="total-tokens">195</dd>' in page
    assert "25.0% <small>(1 of 4 replies)</small>" in page
    assert "50% positive <small>(1 up, 1 down)</small>" in page
    assert '<dd id="busiest-hours">14:00, 09:00</dd>' in page


def test_one_assistants_numbers(admin_client, month, sales):
    response = admin_client.get(OVERVIEW, {"assistant": "sales"})

    numbers = response.context["overview"]
    assert numbers["totals"]["conversations"] == 1
    assert (numbers["totals"]["messages"], numbers["totals"]["tokens"]) == (2, 150)
    assert numbers["error_rate"] == 0.0
    assert numbers["positive_feedback"] is None
    assert numbers["busiest_hours"] == [14]
    page = response.content.decode()
    assert '<option value="sales" selected>' in page
    assert "none yet" in page


def test_the_charts_are_svg_drawn_on_the_server(admin_client, month, today):
    page = admin_client.get(OVERVIEW).content.decode()

    main = page.split('id="content-main"', 1)[1].split('id="footer"', 1)[0]
    assert "<script" not in main
    charts = re.findall(r"<svg class=\"chart\".*?</svg>", main, re.S)
    assert len(charts) == 4  # conversations, messages, tokens per day; visitors by hour
    conversations = re.findall(r'<rect class="chart-bar"[^>]*height="(\d+)"', charts[0])
    assert len(conversations) == 30
    # The busiest day reaches the top; a day with half as many, half-way; empty days are flat.
    heights = [int(h) for h in conversations]
    assert heights[-4] == 120 and heights[-1] == 60
    assert heights.count(0) == 28
    three_days_ago = (today - timedelta(days=3)).isoformat()
    assert f"<title>{three_days_ago}: 2</title>" in charts[0]
    assert len(re.findall(r"<rect ", charts[3])) == 24


def test_no_data_is_all_zeros(admin_client):
    response = admin_client.get(OVERVIEW)
    numbers = response.context["overview"]
    assert {row["messages"] for row in numbers["days"]} == {0}
    assert numbers["error_rate"] is None and numbers["busiest_hours"] == []
    assert "no replies" in response.content.decode()


@pytest.mark.parametrize("query", [{}, {"assistant": "sales"}])
def test_the_overview_runs_a_fixed_number_of_queries(
    admin_client, month, query, django_assert_max_num_queries
):
    # Login session and user; assistants; conversations per day; messages per day; by hour.
    with django_assert_max_num_queries(6):
        assert admin_client.get(OVERVIEW, query).status_code == 200


def test_the_overview_is_linked_from_the_admin_index_and_the_list(admin_client):
    link = f'<a href="{OVERVIEW}">Overview: the last 30 days</a>'
    assert link in admin_client.get("/admin/").content.decode()
    assert link in admin_client.get("/admin/conversations/session/").content.decode()

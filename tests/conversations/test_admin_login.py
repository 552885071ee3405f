"""The admin's sign-in: attempts limited per client IP and per username."""

import re

import pytest
from django.test import Client

from tests.helpers import staff_member

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def sign_in(name: str, password: str, ip: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=ip).post(LOGIN, {"username": name, "password": password})


@pytest.fixture
def limits(settings):
    settings.CHATKIT_RATELIMIT_LOGIN_PER_USERNAME = "3/15m"
    settings.CHATKIT_RATELIMIT_LOGIN_PER_IP = "5/h"


def test_guessing_one_name_is_refused_after_its_allowance(django_user_model, limits):
    staff_member(django_user_model, "ada", is_staff=True)
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert sign_in("ada", "guess", ip=ip).status_code == 200  # the form again, with errors

    refused = sign_in("ada", "pw", ip="203.0.113.4")  # even the right password, for now
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 15 * 60
    assert b"Too many sign-in attempts" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_a_name_counts_however_it_is_written(django_user_model, limits):
    staff_member(django_user_model, "admin", is_staff=True)
    # Django signs these in as "admin" (its username field normalises with NFKC).
    for spelling in ("ADMIN", "\uff41\uff44\uff4d\uff49\uff4e", "\U0001d41a" + "dmin"):
        assert sign_in(spelling, "guess", ip="198.51.100.3").status_code == 200
    assert sign_in("admin", "pw", ip="198.51.100.4").status_code == 429


def test_a_name_under_attack_does_not_lock_out_the_others(django_user_model, limits):
    staff_member(django_user_model, "ada", is_staff=True)
    staff_member(django_user_model, "grace", is_staff=True)
    for _ in range(3):
        sign_in("ADA ", "guess", ip="203.0.113.9")  # names count as typed, in any case
    assert sign_in("ada", "pw", ip="198.51.100.1").status_code == 429

    grace = sign_in("grace", "pw", ip="203.0.113.9")
    assert grace.status_code == 302  # signed in


def test_one_address_guessing_many_names_is_refused(django_user_model, limits):
    for n in range(5):
        assert sign_in(f"user{n}", "guess").status_code == 200
    assert sign_in("user9", "guess").status_code == 429
    assert sign_in("user9", "guess", ip="198.51.100.2").status_code == 200  # another address


def test_the_sign_in_page_itself_is_not_counted(django_user_model, limits):
    staff_member(django_user_model, "ada", is_staff=True)
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(10):
        assert client.get(LOGIN).status_code == 200
    assert client.post(LOGIN, {"username": "ada", "password": "pw"}).status_code == 302


def test_limits_off_lets_every_attempt_through(django_user_model, limits, settings):
    settings.RATELIMIT_ENABLE = False
    for _ in range(6):
        assert sign_in("ada", "guess").status_code == 200


def test_a_cache_that_does_not_answer_lets_staff_sign_in(django_user_model, limits, settings):
    staff_member(django_user_model, "ada", is_staff=True)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    # Sessions are in the database: only the limits' counters are lost.
    assert sign_in("ada", "pw").status_code == 302


@pytest.mark.parametrize("path", [LOGIN, "/admin/"])
def test_the_admin_is_chatkits(admin_client, client, path):
    page = (admin_client if path == "/admin/" else client).get(path).content.decode()

    assert re.search(r'id="site-name"[^>]*>\s*(<a [^>]*>)?ChatKit<', page), page
    assert re.search(r"<title>[^<]*\| ChatKit admin</title>", page)
    assert "Django" not in page


def test_the_admin_home_is_titled_for_chatkit(admin_client):
    assert (
        "<h1>Assistants, conversations and staff</h1>"
        in admin_client.get("/admin/").content.decode()
    )

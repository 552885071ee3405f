"""The Content-Security-Policy: on every HTML page (the demo, the admin, the API docs), exactly
the site's policy, and on nothing the API answers."""

import re

import pytest
from csp.decorators import csp_exempt, csp_replace
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory

from chatkit.middleware import ContentSecurityPolicyMiddleware
from tests.factories import conversation, reply, visitor
from tests.helpers import (
    ADMIN_CONVERSATIONS,
    ADMIN_OVERVIEW,
    REVIEWERS,
    admin_page_of,
    post_json,
    staff_member,
)

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
}


def policy_of(response) -> dict[str, list[str]]:
    """The response's policy as {directive: sources} (django-csp orders directives freely)."""
    assert response.status_code == 200, response.status_code
    directives = [d.split() for d in response["Content-Security-Policy"].split(";")]
    return {name: sources for name, *sources in directives}


@pytest.fixture
def reviewer(client, django_user_model):
    client.force_login(
        staff_member(django_user_model, "reviewer", groups=[REVIEWERS], is_staff=True)
    )
    return client


def test_the_demo_page_has_the_sites_policy_and_names_the_widgets_api_calls(client):
    assert policy_of(client.get("/")) == {
        **POLICY,
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
    }


def test_the_admin_login_page_has_the_policy(client):
    assert policy_of(client.get("/admin/login/")) == POLICY


@pytest.mark.parametrize("page", ["/admin/", ADMIN_CONVERSATIONS, ADMIN_OVERVIEW])
def test_the_admin_pages_staff_read_have_the_policy(reviewer, assistant, page):
    conversation(assistant, visitor("Hi"), reply("Hello"))
    assert policy_of(reviewer.get(page)) == POLICY


def test_a_transcript_has_the_policy(reviewer, assistant):
    talk = conversation(assistant, visitor("Hi"), reply("Hello"))
    assert policy_of(reviewer.get(admin_page_of(talk))) == POLICY


def test_the_api_docs_have_the_policy_and_nothing_inline(client):
    response = client.get("/api/docs")
    assert policy_of(response) == POLICY
    page = response.content.decode()
    assert "<style" not in page and " style=" not in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all(" src=" in tag for tag in scripts)


def test_the_api_docs_start_swagger_ui_from_a_script_file(client):
    page = client.get("/api/docs").content.decode()
    start = re.findall(r'<script src="([^"]+)"', page)[-1].replace("&amp;", "&")
    script = client.get(start)
    assert script.status_code == 200
    assert script["Content-Type"] == "application/javascript"
    assert "SwaggerUIBundle(" in script.content.decode()


def test_the_api_docs_send_the_schema_to_no_online_validator(client):
    # Swagger UI's default badge is an image from swagger.io, given the schema's URL.
    script = client.get("/api/docs", {"script": ""}).content.decode()
    assert '"validatorUrl": null' in script


def test_api_answers_carry_no_policy(api, client, session):
    answers = [
        client.get("/api/v1/assistants/default"),
        post_json(api, "/api/v1/sessions"),
        client.get(f"/api/v1/sessions/{session.public_id}"),
        client.get("/api/v1/sessions/unknown"),
        client.get("/api/schema"),
        client.get("/health"),
    ]
    for answer in answers:
        assert answer["Content-Type"].startswith("application/"), answer["Content-Type"]
        assert "Content-Security-Policy" not in answer, answer.request["PATH_INFO"]


# --- django-csp's view decorators, as the middleware reads them --------------------------------


def middleware_around(view):
    async def get_response(request):
        return view(request)

    return ContentSecurityPolicyMiddleware(get_response)


def html(request):
    return HttpResponse("<p>A page</p>")


async def test_a_page_exempt_from_the_policy_gets_none():
    response = await middleware_around(csp_exempt()(html))(RequestFactory().get("/"))
    assert "Content-Security-Policy" not in response


async def test_a_view_replaces_a_directive_of_the_policy():
    view = csp_replace({"img-src": ["'self'", "https://img.example"]})(html)
    response = await middleware_around(view)(RequestFactory().get("/"))
    assert "img-src 'self' https://img.example" in response["Content-Security-Policy"]
    assert "data:" not in response["Content-Security-Policy"]


async def test_a_header_the_view_set_itself_is_left_alone():
    def view(request):
        response = html(request)
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = await middleware_around(view)(RequestFactory().get("/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"


async def test_json_gets_no_policy_whatever_its_view_says():
    view = csp_replace({"img-src": ["'self'"]})(lambda request: JsonResponse({}))
    response = await middleware_around(view)(RequestFactory().get("/"))
    assert "Content-Security-Policy" not in response


async def test_djangos_debug_pages_keep_their_inline_styles(settings):
    def missing(request):
        return HttpResponse("<style>…</style>", status=404)

    settings.DEBUG = True
    response = await middleware_around(missing)(RequestFactory().get("/nowhere"))
    assert "Content-Security-Policy" not in response

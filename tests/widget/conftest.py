import os
import time

import pytest

from tests.browser import CHROMIUM_ARGS, require_chromium
from tests.widget.host import HostSite


# Per module: Playwright's loop stays current in this thread while it runs, which would break
# tests of other modules that start their own event loops (pytest-django reorders tests).
@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, which Django takes for async
    # code and so refuses the fixtures' ORM calls. The app under test runs in its own
    # uvicorn process; only fixtures touch the ORM here, so allow it while the browser lives.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(executable), args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def new_page(browser):
    """Open pages in fresh browser contexts (viewport, locale, colour scheme as given).

    Each page collects its console errors and uncaught exceptions (a CSP violation is one),
    and fails the test on any JavaScript dialog: nothing the widget shows may open one.
    """
    contexts, pages = [], []

    def open_page(**options):
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        # Requests still being answered when the test ends: the chat server must be done with
        # them before the test's database is emptied under it (on PostgreSQL, a page being
        # read while the tables are truncated is a deadlock). Streams are left out: a test
        # that holds one open ends it itself.
        page.in_flight = set()
        page.on("request", lambda r: page.in_flight.add(r))
        page.on("requestfinished", lambda r: page.in_flight.discard(r))
        page.on("requestfailed", lambda r: page.in_flight.discard(r))
        page.on(
            "response",
            lambda r: (
                page.in_flight.discard(r.request)
                if r.headers.get("content-type", "").startswith("text/event-stream")
                else None
            ),
        )
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
        page.console_errors = errors
        return page

    yield open_page
    for page in pages:
        deadline = time.monotonic() + 10
        while page.in_flight and not page.is_closed() and time.monotonic() < deadline:
            page.wait_for_timeout(20)  # lets Playwright deliver the requests' events
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="module")
def host_site():
    """The customer's site, on an origin of its own."""
    site = HostSite()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def chat(model_server_factory, host_site):
    """The chat host: a real uvicorn answering with the fake model; the host site may embed it."""
    return model_server_factory(
        CORS_ALLOWED_ORIGINS=host_site.url,
        OPENAI_FIRST_TOKEN_TIMEOUT="5",
        OPENAI_TIMEOUT="5",
    )


def eventually(check, *, timeout: float = 10.0, interval: float = 0.05):
    """Poll `check` until it returns something truthy: a state another process reaches."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check}")
        time.sleep(interval)
    return result

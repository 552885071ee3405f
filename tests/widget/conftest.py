import os

import pytest

from tests.browser import CHROMIUM_ARGS, require_chromium


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
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    yield page
    context.close()

"""Screenshots of the widget for the README: `make screenshots` writes docs/screenshots/*.png.

It serves the demo page from a throwaway SQLite database with uvicorn, answers with the fake
OpenAI-compatible model the tests use (a fixed reply), and drives Debian's Chromium through
Playwright, as the browser tests do. Nothing leaves this machine; CI never runs it.
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.live import free_port  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
QUESTION = "How fast do you ship to Spain?"
REPLY = (
    "We roast every **Monday** and ship the same week.\n\n"
    "- **Spain and Portugal**: 3 to 5 working days\n"
    "- **Rest of the EU**: 2 to 4 working days\n\n"
    "You can follow any order at [northwind.example/track](https://northwind.example/track)."
)
SHOTS = {
    "desktop": ({"viewport": {"width": 1280, "height": 800}}, "/"),
    "dark": ({"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"}, "/"),
    "phone": (
        {
            "viewport": {"width": 390, "height": 844},
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
        },
        "/",
    ),
    "inline": ({"viewport": {"width": 1280, "height": 900}}, "/?mode=inline"),
}


def serve(workdir: str, model_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "true",
        "CHATKIT_ENV_FILE": "",
        "DATABASE_URL": f"sqlite:///{workdir}/screenshots.sqlite3",
        "OPENAI_API_KEY": "fake",
        "OPENAI_BASE_URL": model_url,
        "OPENAI_MODEL": "fake-model",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "chatkit.asgi:application", "--port", str(port),
         "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until uvicorn listens
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    server.terminate()
    sys.exit("uvicorn did not start")


def main() -> None:
    if not CHROMIUM.exists():
        sys.exit(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir, FakeOpenAI(reply=REPLY, itl=0.01) as model:
        server, url = serve(workdir, model.base_url)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                for name, (options, path) in SHOTS.items():
                    context = browser.new_context(**options)
                    page = context.new_page()
                    page.goto(url + path)
                    widget = page.locator("chatkit-widget")
                    if path == "/":
                        widget.locator(".l").click()
                    widget.get_by_role("textbox").fill(QUESTION)
                    widget.get_by_role("textbox").press("Enter")
                    expect(widget.locator("li.m.a .fb").last).to_be_visible()
                    # No focus ring in the picture.
                    page.evaluate(
                        "document.querySelector('chatkit-widget').shadowRoot.activeElement?.blur()"
                    )
                    page.screenshot(path=OUT / f"{name}.png")
                    print(f"wrote {OUT / f'{name}.png'}")
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()

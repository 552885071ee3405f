"""Chromium for browser tests: Debian's build, driven by Playwright."""

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Nothing may reach out of this machine: no background networking, no component updates.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> Path:
    """Chromium's path; without it, fail on CI (browser tests must run there), else skip."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests", pytrace=False)
    pytest.skip(f"{reason}: browser tests skipped")

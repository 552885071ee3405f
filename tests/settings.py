"""Test settings: the production configuration (DEBUG off), with test values filled in.

The suite runs against what operators run, not the development defaults; only HTTPS
redirects are off, since the test client and the test servers speak plain HTTP.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 50)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("CORS_ALLOWED_ORIGINS", "https://shop.example,https://blog.example")
# Tests choose their model, never the developer's real key: demo unless a test points the
# client at the fake server (in-process through settings, or a live server through this).
os.environ["OPENAI_API_KEY"] = os.environ.get("TEST_OPENAI_API_KEY", "")
os.environ.setdefault("OPENAI_MAX_RETRIES", "0")
os.environ.setdefault("CHATKIT_DEMO_DELAY", "0")
# In-process tests run turns on the test database's one connection: the heartbeat thread,
# which writes from a thread of its own, sleeps through them (live servers set their own).
os.environ.setdefault("CHATKIT_HEARTBEAT_SECONDS", "3600")

from chatkit.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
# One test database per run, so two runs on one machine do not share it; on SQLite a file,
# not memory, so a live uvicorn process can share it too.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    _test_db = str(Path(tempfile.gettempdir()) / f"chatkit-test-{os.getpid()}.sqlite3")
else:
    _test_db = f"test_chatkit_{os.getpid()}"
DATABASES["default"]["TEST"] = {"NAME": _test_db}  # noqa: F405
# Hashing passwords slowly buys nothing in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files straight from the apps, as in development: the suite runs no collectstatic.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

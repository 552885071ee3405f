"""WSGI entry point, for tools that need one. Serve with uvicorn (ASGI): streams hold no thread."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatkit.settings")

application = get_wsgi_application()

"""Helpers the suite shares: calling the API, reading the admin, talking raw HTTP."""

import socket
from pathlib import Path

from django.contrib.auth.models import Group
from django.test import Client

from conversations.models import Session

ROOT = Path(__file__).resolve().parent.parent
ADMIN_CONVERSATIONS = "/admin/conversations/session/"
ADMIN_OVERVIEW = ADMIN_CONVERSATIONS + "overview/"
REVIEWERS = "Conversation reviewers"


def post_json(client: Client, path: str, body=None, **extra):
    return client.post(
        path, body if body is not None else {}, content_type="application/json", **extra
    )


def admin_page_of(session: Session) -> str:
    """A conversation's page in the admin (its transcript)."""
    return f"{ADMIN_CONVERSATIONS}{session.pk}/change/"


def staff_member(django_user_model, name: str, *, groups: list[str] = (), **fields):
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw", **fields)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def raw_post(port: int, path: str, body: bytes, headers: str = "") -> socket.socket:
    """Send a POST on a raw socket and leave it open: closing it is the visitor leaving.

    `headers` are extra header lines, each ending in CRLF (a Content-Length among them, or
    none: the test decides).
    """
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{headers}\r\n".encode()
        + body
    )
    return sock

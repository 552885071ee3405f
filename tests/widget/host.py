"""A customer's website on another origin: pages that embed the widget, from a tiny HTTP server.

The chat runs on http://127.0.0.1:PORT (uvicorn); these pages are served from
http://localhost:OTHER, a different origin, as a customer's site would be.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.live import free_port


class HostSite:
    """Serves what `page()` and `file()` put at a path, with the headers given, until `stop()`."""

    def __init__(self):
        # Browsers ask every site for a favicon; a 404 would be a console error.
        self.files: dict[str, tuple[bytes, str, dict[str, str]]] = {
            "/favicon.ico": (b"", "image/x-icon", {})
        }
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                if path not in files:
                    self.send_error(404)
                    return
                body, content_type, headers = files[path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def file(self, path: str, body: str, content_type: str, **headers: str) -> str:
        self.files[path] = (body.encode(), content_type, headers)
        return self.url + path

    def page(self, path: str, html: str, *, csp: str | None = None) -> str:
        headers = {"Content-Security-Policy": csp} if csp else {}
        return self.file(path, html, "text/html; charset=utf-8", **headers)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def strict_csp(chat_url: str) -> str:
    """What the README tells a host to allow: the chat host for scripts, styles and requests.

    No 'unsafe-inline', no 'unsafe-eval'; the page's own files are 'self'.
    """
    return (
        f"default-src 'none'; script-src 'self' {chat_url}; style-src 'self' {chat_url}; "
        f"connect-src {chat_url}; img-src 'self'; base-uri 'none'; form-action 'none'"
    )


def embed(chat_url: str, *, attrs: str = "", head: str = "", body: str = "") -> str:
    """A page with the customer's snippet (and whatever else the test puts around it)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>A customer's site</title>{head}</head><body>{body}"
        f'<script src="{chat_url}/static/widget/chatkit.js" data-assistant="default" {attrs} async>'
        "</script></body></html>"
    )

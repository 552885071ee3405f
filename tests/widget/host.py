"""A customer's website on another origin: pages that embed the widget, from a tiny HTTP server.

The chat runs on http://127.0.0.1:PORT (uvicorn); these pages are served from
http://localhost:OTHER, a different origin, as a customer's site would be.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.live import free_port


class HostSite:
    """Serves what `page()`, `file()` and `stream()` put at a path, until `stop()`.

    GET and POST alike: a test can also stand in for a chat host that behaves unlike ours
    (a proxy that rewrites line ends, a server slow to answer), named with `data-api-url`.
    """

    def __init__(self):
        # Browsers ask every site for a favicon; a 404 would be a console error.
        self.files: dict[str, tuple[bytes | list[bytes], str, dict[str, str]]] = {
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
                delay = float(headers.get("X-Delay", 0))
                time.sleep(delay)  # a slow server, as the test asked
                chunks = body if isinstance(body, list) else [body]
                self.send_response(int(headers.get("X-Status", 200)))
                self.send_header("Content-Type", content_type)
                if isinstance(body, list):
                    self.send_header("Connection", "close")  # the body ends when we close
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in headers.items():
                    if name not in ("X-Delay", "X-Status"):
                        self.send_header(name, value)
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        if isinstance(body, list):
                            time.sleep(0.05)  # each piece in a packet of its own
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went away (Stop), as the test meant it to

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.do_GET()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def file(self, path: str, body: str, content_type: str, **headers: str) -> str:
        self.files[path] = (body.encode(), content_type, headers)
        return self.url + path

    def stream(self, path: str, chunks: list[bytes], content_type: str, **headers: str) -> str:
        """A response written in these pieces, each flushed on its own."""
        self.files[path] = (chunks, content_type, headers)
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

"""How the widget's script is cached by the browsers of customers' visitors."""

# Customers paste /static/widget/chatkit.js once: it must not be an immutable hashed asset.
# Pages use the cached copy at once and revalidate it (ETag) in the background, so a new
# release reaches visitors within minutes without costing any page view a request.
WIDGET_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"


def add_headers(headers, path: str, url: str) -> None:
    """WhiteNoise's per-file hook (WHITENOISE_ADD_HEADERS_FUNCTION)."""
    if url.endswith("/widget/chatkit.js"):
        headers["Cache-Control"] = WIDGET_CACHE_CONTROL
        # Loadable from pages that require it of cross-origin resources (COEP).
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"

"""The demo page: a sample business site that embeds the widget the way a customer does."""

from urllib.parse import urljoin

from csp.constants import NONE, SELF
from csp.decorators import csp_update
from django.conf import settings
from django.shortcuts import render
from django.utils.html import format_html
from django.utils.text import slugify

# The widget's stable URL: customers paste it once, so it is never the hashed static name.
WIDGET_PATH = "widget/chatkit.js"

# The demo page is under the site's strict policy (settings.CONTENT_SECURITY_POLICY), the one
# the widget is built for: nothing inline, nothing from elsewhere; the widget's styles are a
# constructed stylesheet, which it allows. The page also names what a customer's policy must
# say for the widget's API calls (connect-src, same-origin here), and allows no plugins.
DEMO_CSP = {"connect-src": [SELF], "object-src": [NONE]}


def widget_url(request) -> str:
    """The absolute URL of chatkit.js on this host, as a customer's snippet names it."""
    return request.build_absolute_uri(urljoin(settings.STATIC_URL, WIDGET_PATH))


def embed_snippet(*, src: str, assistant: str, inline: bool) -> str:
    """The `<script>` tag a site owner pastes: the bubble, or the chat inside `#chat`."""
    if inline:
        return format_html(
            '<script src="{}" data-assistant="{}" data-mode="inline" data-target="#chat" '
            "async></script>",
            src,
            assistant,
        )
    return format_html('<script src="{}" data-assistant="{}" async></script>', src, assistant)


@csp_update(DEMO_CSP)
def demo(request):
    """The demo site; `?assistant=slug` picks the assistant, `?mode=inline` the inline embed."""
    assistant = slugify(request.GET.get("assistant", "")) or "default"
    inline = request.GET.get("mode") == "inline"
    src = widget_url(request)
    return render(
        request,
        "widget/demo.html",
        {
            "assistant": assistant,
            "inline": inline,
            "snippet": embed_snippet(src=src, assistant=assistant, inline=inline),
            "chat_host": request.build_absolute_uri("/").rstrip("/"),
        },
    )

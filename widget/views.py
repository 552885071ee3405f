"""The demo page: a sample site that talks to the chat API."""

from django.shortcuts import render
from django.utils.text import slugify


def demo(request):
    """The demo site; `?assistant=slug` picks the assistant to try."""
    assistant = slugify(request.GET.get("assistant", "")) or "default"
    return render(request, "widget/demo.html", {"assistant": assistant})

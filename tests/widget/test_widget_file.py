"""chatkit.js as customers' pages receive it: small, at a stable URL, briefly cached."""

import gzip
import re
from pathlib import Path

import pytest

from widget.caching import WIDGET_CACHE_CONTROL

WIDGET = Path(__file__).resolve().parents[2] / "widget" / "static" / "widget" / "chatkit.js"
BUDGET = 15_000  # bytes of gzip -9 of the file as served, every locale included (15 KB)


def test_the_widget_is_at_most_15_kb_gzipped():
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    print(f"chatkit.js: {WIDGET.stat().st_size} bytes, {size} gzipped")
    assert size <= BUDGET


def test_the_widget_ships_its_five_locales_and_uses_no_markup_sinks():
    source = WIDGET.read_text()
    for locale in ("en", "es", "fr", "de", "ar"):
        assert re.search(rf"^    {locale}: {{$", source, re.M), locale
    # Text is never parsed as HTML, nor code run from strings.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    assert "new Function" not in source


@pytest.mark.django_db
def test_the_widget_is_cached_briefly_and_revalidated_not_immutable(client):
    response = client.get("/static/widget/chatkit.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == WIDGET_CACHE_CONTROL
    assert "immutable" not in response["Cache-Control"]
    max_age = int(re.search(r"max-age=(\d+)", response["Cache-Control"]).group(1))
    assert 0 < max_age <= 3600
    etag = response["ETag"]

    again = client.get("/static/widget/chatkit.js", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


@pytest.mark.django_db
def test_other_static_files_keep_whitenoise_defaults(client):
    response = client.get("/static/widget/demo.css")
    assert response["Cache-Control"] != WIDGET_CACHE_CONTROL

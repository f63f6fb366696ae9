"""Pages in an encoding whose bytes are not ASCII's are read as the browser reads them: ISO-2022-JP
(stateful: an escape sequence inside a tag name or a host decodes to nothing) and UTF-16 (declared,
or by a byte order mark whatever the header says) are read as text and sent on in UTF-8, so the
browser reads exactly what was judged. Checked on every adapter; in Chromium by
tests/browser/test_what_browsers_fetch.py."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from consentmw.core.rewriting import page_codec
from consentmw.core.store import MemoryStore
from tests.adapters import ADAPTERS, client_for
from tests.conftest import SECRET

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

GTAG = "https://www.googletagmanager.com/gtag/js?id=G-7QX2LCE5N1"
TEXT = "<!doctype html><html><head><title>日本語のページ</title></head><body><p>テスト、ｶﾀｶﾅ</p>{tag}</body></html>"
ESC_ASCII = "\x1b(B"


def iso_2022_jp(tag: str) -> str:
    """The page in ISO-2022-JP (7-bit: it travels as a str), with `tag` spliced in as bytes."""
    return TEXT.format(tag="@TAG@").encode("iso2022_jp_ext").decode("ascii").replace("@TAG@", tag)


# Tags whose tracker a byte-wise reading of ISO-2022-JP misses: the escapes decode to nothing.
HIDDEN = {
    "escape in the tag name": f'<scr{ESC_ASCII}ipt src="{GTAG}"></script>',
    "escape in the host": f'<script src="https://www.google{ESC_ASCII}tagmanager.com/gtag/js?id=G-7QX2LCE5N1"></script>',
    "escape in the attribute name": f'<script s{ESC_ASCII}rc="{GTAG}"></script>',
    "plain": f'<script src="{GTAG}"></script>',
}


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("declared", ["header", "meta", "header-upper"])
@pytest.mark.parametrize("tag", HIDDEN.values(), ids=HIDDEN.keys())
def test_an_iso_2022_jp_page_is_read_as_the_browser_reads_it_and_sent_in_utf8(adapter: str, declared: str, tag: str) -> None:
    body = iso_2022_jp(tag)
    content_type = {"header": "text/html; charset=iso-2022-jp", "header-upper": 'text/html; charset="ISO-2022-JP"', "meta": "text/html"}[declared]
    if declared == "meta":
        body = body.replace("<head>", '<head><meta charset="iso-2022-jp">')
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}) as site:
        r = site.get("/headers?" + urlencode([("h", f"Content-Type:{content_type}"), ("body", body)]))
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        page = r.content.decode("utf-8")
        assert "<p>テスト、ｶﾀｶﾅ</p>" in page and "<title>日本語のページ</title>" in page
        assert 'data-consentmw-src="https://www.google' in page and ' src="https://www.google' not in page
        assert site.post("/_consent", json={"accept": "all"}).status_code == 200
        r = site.get("/headers?" + urlencode([("h", f"Content-Type:{content_type}"), ("body", body)]))
        assert "data-consentmw" not in r.content.decode("utf-8").split("</head>")[1]


@pytest.mark.parametrize(
    ("headers", "start", "codec"),
    [
        ([(b"content-type", b"text/html; charset=utf-8")], b"\xff\xfe<\x00", "utf-16-le"),  # the BOM wins
        ([(b"content-type", b"text/html; charset=iso-2022-jp")], b"\xef\xbb\xbf<p>", None),
        ([(b"content-type", b"text/html; charset=unicodeFFFE")], b"\x00<", "utf-16-be"),
        ([(b"content-type", b"text/html; charset=utf-32")], b"<p>", None),  # no encoding to a browser
        ([(b"content-type", b"text/html")], b'<meta charset="utf-16"><p>', None),  # a meta saying UTF-16 means UTF-8
        ([(b"content-type", b"text/html")], b"<p>\x1b$BF|K\\8l\x1b(B</p>", "iso2022_jp_ext"),  # unlabelled, 7-bit
        ([(b"content-type", b"text/html")], b"<p>\xe6\x97\xa5\x1b$B</p>", None),  # 8-bit: not ISO-2022-JP
        ([(b"content-type", b"text/html; charset=euc-kr")], b"<p>\xc7\xd1</p>", None),
    ],
)
def test_the_encoding_is_found_as_the_browser_finds_it(headers: list[tuple[bytes, bytes]], start: bytes, codec: str | None) -> None:
    assert page_codec(headers, start) == codec


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_utf16_page_is_read_as_text_and_sent_in_utf8_on_every_adapter(adapter: str) -> None:
    # ASCII text in UTF-16LE without a BOM travels in a str (its bytes are all below 128).
    page = f'<!doctype html><html><head></head><body><p>x</p><script src="{GTAG}"></script></body></html>'
    body = page.encode("utf-16-le").decode("ascii")
    with client_for(adapter, {"secret_key": SECRET, "store": MemoryStore()}) as site:
        r = site.get("/headers?" + urlencode([("h", "Content-Type:text/html; charset=utf-16le"), ("body", body)]))
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        out = r.content.decode("utf-8")
        assert "<p>x</p>" in out and f'data-consentmw-src="{GTAG}"' in out

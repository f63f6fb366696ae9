"""What a browser loads from a page, read by html5lib (the HTML standard's parser): an oracle for
the rewriter that shares no code with it."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import html5lib

HTML = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
JS_TYPES = {"", "text/javascript", "application/javascript", "module", "text/ecmascript", "application/ecmascript"}
HINTS = {"preload", "prefetch", "modulepreload", "preconnect", "dns-prefetch"}


def parse(markup: str, scripting: bool = True) -> Element:
    return html5lib.HTMLParser(namespaceHTMLElements=True).parse(markup, scripting=scripting)


def loads(markup: str) -> list[str]:
    """Every script that runs ("src URL" or "code TEXT") and every address an image, iframe or
    resource hint loads, for a visitor with JavaScript; then the images and iframes that load for
    a visitor without it (<noscript> is markup for them)."""
    found: list[str] = []
    walk(parse(markup), found, noscript=False)
    walk(parse(markup, scripting=False), found, noscript=True)
    return found


def walk(root: Element, found: list[str], noscript: bool) -> None:
    for el in root:
        tag = el.tag if isinstance(el.tag, str) else ""
        a = el.attrib
        if noscript and tag in (HTML + "img", HTML + "iframe"):
            if a.get("src"):
                found.append("src " + a["src"])
        elif not noscript:
            if tag == HTML + "script" and (a.get("type") or "").strip().lower() in JS_TYPES:
                # An HTML script's href loads nothing (Chromium fetches none). It is noted beside the
                # code because the rewriter holds a script naming a tracker there as it would an SVG
                # one: it does not follow every way the tree builder leaves foreign content.
                href = next((f" (href {v})" for k, v in a.items() if k in ("href", "xlink:href", XLINK)), "")
                found.append("src " + a["src"] if a.get("src") is not None else "code " + "".join(el.itertext()) + href)
            elif tag == SVG + "script" and (a.get("href") or a.get(XLINK)):
                found.append("src " + (a.get("href") or a.get(XLINK) or ""))
            elif tag in (HTML + "img", HTML + "iframe", HTML + "source") and a.get("src"):
                found.append("src " + a["src"])
            if tag in (HTML + "img", HTML + "source") and a.get("srcset"):
                found.extend("src " + c.split()[0] for c in a["srcset"].split(",") if c.strip())
            if tag == HTML + "link" and set((a.get("rel") or "").lower().split()) & HINTS:
                found.extend("src " + u for u in [a.get("href"), *(c.split()[0] for c in (a.get("imagesrcset") or "").split(",") if c.strip())] if u)
        walk(el, found, noscript)


def shape(markup: str) -> list[tuple[str, str]]:
    """The document's elements, text and comments in order, without attributes: what rewriting
    attributes must leave as it was. A <noscript>'s text is left out: it is markup to visitors
    without JavaScript, whose pixels in it are made inert."""
    out: list[tuple[str, str]] = []

    def visit(el: Element) -> None:
        out.append(("el", el.tag if isinstance(el.tag, str) else "#comment:" + (el.text or "")))
        if el.text and isinstance(el.tag, str) and el.tag != HTML + "noscript":
            out.append(("text", el.text))
        for child in el:
            visit(child)
            if child.tail:
                out.append(("text", child.tail))

    visit(parse(markup))
    return out

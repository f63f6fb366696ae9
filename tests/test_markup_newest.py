"""Where the newest HTML standard (and Chromium) reads foreign content otherwise than html5lib, so the
html5lib differential cannot see it: each page hides a tracker that Chromium loads (checked in
Chromium by tests/browser/test_what_browsers_fetch.py); the rewriter must make it inert whatever
the chunking, and read more markup than Chromium where the two differ, never less."""

from __future__ import annotations

import pytest

from tests.test_markup import GTAG, PIXEL, rewrite

IMG = f'<img src="{PIXEL}">'
HELD_IMG = f'<img data-consentmw-src="{PIXEL}" data-consentmw-category="advertising">'
HELD_GTAG = GTAG.replace(" src=", " data-consentmw-src=").replace('"></script>', '" type="text/plain" data-consentmw-category="analytics"></script>')
# name -> markup around a tracker, which Chromium loads for an undecided visitor.
NEWEST = {
    "style after mglyph in a MathML text integration point": f"<math><mi><mglyph><style>{IMG}</style></mglyph></mi></math>",
    "style after malignmark in a MathML text integration point": f"<math><mo><malignmark><style>{IMG}</style></malignmark></mo></math>",
    "annotation-xml whose encoding has a space": f'<math><annotation-xml encoding="text/html "><style>{IMG}</style></annotation-xml></math>',
    "font with color= inside an attribute value": f'<svg><font title=" color=1"><style>{IMG}</style></font></svg>',
    "font with color right after a quoted value": f'<svg><font title="a"color=1><![CDATA[ >{GTAG} ]]></font></svg>',
    "CDATA after </p> in SVG": f"<svg></p><![CDATA[ >{GTAG} ]]></svg>",
    "CDATA after </br> in MathML": f"<math></br><![CDATA[ >{GTAG} ]]></math>",
    "CDATA after an end tag ignored in an integration point": f"<svg><desc><div></desc><![CDATA[ >{GTAG} ]]></svg>",
    "CDATA after an ignored end tag in foreignObject": f"<svg><foreignObject><span></foreignObject><![CDATA[ x > {IMG} ]]></svg>",
}


def page(body: str) -> str:
    return f"<!doctype html><html><head><title>t</title></head><body><p>before</p>{body}<p>after</p></body></html>"


@pytest.mark.parametrize("chunk", [0, 1, 5])
@pytest.mark.parametrize("body", NEWEST.values(), ids=NEWEST.keys())
def test_what_the_newest_standard_loads_is_made_inert(body: str, chunk: int) -> None:
    # The tracker's tag is held; nothing else changes.
    assert rewrite(page(body), chunk=chunk) == page(body.replace(IMG, HELD_IMG).replace(GTAG, HELD_GTAG))


def test_a_real_cdata_section_keeps_its_text_apart_from_a_renamed_address() -> None:
    # In foreign content the section is text; read as markup as well, a tracker address in it is
    # renamed (what a browser in HTML content would load), and nothing else changes.
    markup = page("<svg><![CDATA[ a > b <i>c</i> ]]><text>x</text></svg>")
    assert rewrite(markup) == markup
    markup = page(f"<svg><![CDATA[ a > {IMG} ]]><text>x</text></svg>")
    assert rewrite(markup) == markup.replace(IMG, HELD_IMG)


def test_font_attributes_that_are_not_color_face_or_size_stay_in_foreign_content() -> None:
    # Stays SVG: <style> there is markup, so the image is seen whether or not the font breaks out.
    markup = page(f'<svg><font titlecolor="1" data-size=2><style>{IMG}</style></font></svg>')
    assert rewrite(markup) == markup.replace(IMG, HELD_IMG)

"""Streaming rewriting of HTML responses: tracker tags of refused categories become inert.

One ``HTMLRewriter`` per policy holds what is worked out once (the tracker rules, the mapping of
other consent tools' names); ``HTMLRewriter.stream(allowed, ...)`` makes the per-response
``RewriteStream`` with ``feed(bytes) -> bytes`` and ``close() -> bytes``.

The stream reads markup with the HTML standard's tokenizer states (section 13.2.5), and as much
of the tree builder as decides which state the tokenizer is in: raw text and RCDATA elements,
script data with its escapes, foreign content (SVG, MathML) and ``<noscript>`` as a browser with
scripting on reads it. Runs of text and tags that cannot load anything are jumped over with one
regular expression that follows the same grammar; everything else goes through one method per
state. Each state keeps its position across chunks, so no byte is looked at more than a bounded
number of times however the body is cut. Bytes are copied as they came, so any ASCII-compatible
charset (UTF-8, EUC-KR, ...) passes unchanged. It keeps back only an unfinished tag, or an inline
script up to ``inline_limit`` bytes while it cannot yet tell what the script is.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Collection
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from consentmw.core.catalog import hosts
from consentmw.core.policy import Policy
from consentmw.core.trackers import Tracker, TrackerRules, url_host

# HTML whitespace (the input stream turns CR into LF; a vertical tab is no whitespace).
WS = rb"\t\n\f\r "
# What follows a tag's name, up to and including its ">", for a tag that is complete: the states
# before/after attribute name, attribute name, before attribute value, attribute value (double-
# quoted, single-quoted, unquoted), after attribute value (quoted) and self-closing start tag.
# Possessive and atomic throughout, so a tag that never ends costs one pass. Group 1 is "/" for
# a self-closing tag. A valueless name may not be followed by "=", so an unclosed quoted value
# fails the match (more data needed) instead of being read as more attributes. The repeat is an
# atomic group around "*", not "*+": CPython 3.11.2 (Debian 12's python3) fails the whole match
# of a possessive repeat whose group ends on a failing lookahead, so "<svg/>" never closed.
# NAME_GUARD: a condition on where an attribute's name may begin, and STOP: bytes that may stand in no
# name or unquoted value (none here; see SCRIPT_WITH_CATEGORY).
ATTRIBUTES_WITH_GUARD = (
    rb"(?>(?:[\t\n\f\r ]|/(?!>)|NAME_GUARD[^\t\n\f\r />STOP][^\t\n\f\r /=>STOP]*+"
    rb"""(?>[\t\n\f\r ]*+=[\t\n\f\r ]*+(?>"[^"]*+"|'[^']*+'|[^\t\n\f\r >"'STOP][^\t\n\f\r >STOP]*+|(?=>))|(?![\t\n\f\r ]*+=)))*)"""
)
ATTRIBUTES = ATTRIBUTES_WITH_GUARD.replace(b"NAME_GUARD", b"").replace(b"STOP", b"")
TAG_REST = re.compile(ATTRIBUTES + rb"(/?)>")
# A whole start or end tag in one match, as TAG_NAME then TAG_REST read it: the common case, a tag
# not cut by a chunk's end, goes from the data state to the tree builder without the states between.
WHOLE_TAG = re.compile(rb"<(/?)([a-z][^\t\n\f\r />]*+)" + ATTRIBUTES + rb"(/?)>")
TAG_NAME = re.compile(rb"[^\t\n\f\r />]*+")
# One attribute of a complete tag (searched between its name and its ">").
ATTR = re.compile(rb"""([^\t\n\f\r />][^\t\n\f\r /=>]*)(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"([^"]*)"|'([^']*)'|([^\t\n\f\r >"'][^\t\n\f\r >]*)|\Z))?""")

# Start tags the rewriter acts on (or that switch the tokenizer's state); every other tag in HTML
# content is jumped over with SKIP. End tags only matter for </head> and </body>.
INTERESTING = rb"(?:s(?:cript|tyle|ource|vg)|i(?:m(?:g|age)|frame|nput)|link|h(?:ead|tml)|body|t(?:extarea|itle)|xmp|no(?:embed|frames|script)|plaintext|math|embed|object|frame|video|audio)"
END = rb"[\t\n\f\r />]"
# After "<!--": comment start (dash), comment, comment end (bang). Runs of bytes that are not "-",
# not a lazy ".*?", which tries the rest of the pattern at every byte.
COMMENT_BODY = rb"(?>>|->|[^-]*+(?>(?:-(?!-!?>)[^-]*+)*)--!?+>)"
# The data state and everything that needs no decision, in HTML content: text, tags that load
# nothing, comments, bogus comments (<?...>, <!...>, </ followed by no letter), "</>". A tag is
# jumped over when its attributes are of the shape in SIMPLE_ATTRIBUTES: where that matches, the
# tag ends where the standard ends it; a tag it does not match goes to the attribute states.
# SIMPLE_ATTRIBUTES: runs of anything but quotes, "=" and ">", each "=" right after a name's last
# byte (not after a space, a "/" or a quote, where it would start a name or follow a value's
# end) and right before its value. A quote is then only ever a quoted value's first byte, so the
# first ">" outside the values ends the tag. Text first, then each jump followed by text; end tags
# first and the rare "<" that is text last: the regex engine takes fewer steps so. Repeats of
# groups are atomic groups around "*", not "*+", for CPython 3.11.2 (see ATTRIBUTES).
# Event handlers (on...) and ping are not jumped over (COMMON_NAME): their tag goes to the tree
# builder, which holds a tracker's handler or ping (RewriteStream._hold_attributes).
RUN = rb"""[^>"'=]*+"""
SIMPLE_ATTRIBUTES = RUN + rb"""(?>(?:(?<=[^\t\n\f\r /"'])=(?:"[^"]*+"|'[^']*+'|[^>"'\t\n\f\r ][^\t\n\f\r >]*+)""" + RUN + rb")*)"


def _bytes_but(excluded: bytes) -> bytes:
    """A class of every byte but ``excluded``, written as ranges: the regex engine tests a byte
    against a negated class in three steps and against this one in one (twice as fast a run)."""
    ranges, c = [], 0
    while c < 256:
        if c in excluded:
            c += 1
            continue
        d = c
        while d + 1 < 256 and d + 1 not in excluded:
            d += 1
        ranges.append(b"\\x%02x-\\x%02x" % (c, d))
        c = d + 1
    return b"[" + b"".join(ranges) + b"]"


# SKIP's own grammar for the same tags: each attribute read as its name, "=" and value, so that no
# "=" needs a look behind it; the usual shape first (name="value" after one space or "/", several
# of them as nested alternatives, which cost the engine less than a repeat), any other tag of
# SIMPLE_ATTRIBUTES' shape read again by the repeat in ANY_ATTRIBUTES.
SPACE = b"\t\n\f\r "  # WS's bytes
NAME_CHAR = _bytes_but(SPACE + b"/>")
NAME_BYTE = _bytes_but(SPACE + b"""/>"'=""")
# No attribute named on... (an event handler) or ping= is jumped over: its tag goes to the tree
# builder, which holds a tracker's handler or ping (RewriteStream._hold_attributes). The usual
# names, in COMMON_ATTRIBUTES, begin with neither "o" nor "p": a tag with such a name is read
# again by ANY_ATTRIBUTES, whose names look after an "o" or a "p".
COMMON_NAME = _bytes_but(SPACE + b"""/>"'=op""") + NAME_BYTE + rb"*+"
ATTRIBUTE_NAME = rb"(?:" + COMMON_NAME + rb"|o(?!n)" + NAME_BYTE + rb"*+|p(?!ing=)" + NAME_BYTE + rb"*+)"
SEPARATOR_RUN = rb"[\t\n\f\r /]*+"
ANY_ATTRIBUTES = (
    SEPARATOR_RUN + rb"(?>(?:" + ATTRIBUTE_NAME + rb"""(?:=(?:"[^"]*+"|'[^']*+'|""" + _bytes_but(SPACE + b""">"'""")
    + _bytes_but(SPACE + b">") + rb"*+)|(?=[\t\n\f\r />]))" + SEPARATOR_RUN + rb")*)>"
)
COMMON_ATTRIBUTES = ANY_ATTRIBUTES
for _ in range(6):
    COMMON_ATTRIBUTES = rb"(?:>|[\t\n\f\r /]" + COMMON_NAME + rb'="[^"]*+"' + COMMON_ATTRIBUTES + rb"|" + SEPARATOR_RUN + rb">)"
# A start tag's name that is not INTERESTING: the common first letters checked against their own
# names alone (the whole list costs a tenth of a tag's jump).
NOT_INTERESTING = (
    rb"(?:[cdgjkqruwyz]|s(?!(?:cript|tyle|ource|vg)" + END + rb")|a(?!udio" + END + rb")|p(?!laintext" + END
    + rb")|l(?!ink" + END + rb")|b(?!ody" + END + rb")|(?!" + INTERESTING + END + rb")[a-z])"
)


def skip_pattern(images: bytes = b"", *, script_end: bool = True) -> re.Pattern[bytes]:
    """SKIP; with ``images``, a site's safe_image_pattern, also over the image tags it matches
    (SafeImages.skip); without ``script_end``, never over a </script> (SKIP_HELD). The jumps are
    repeated in blocks of at most 64, each an atomic group: the regex engine keeps a frame on its
    stack for each turn of a repeat until the repeat ends, and a page's thousand tags in one
    repeat grew it to hundreds of KB, copied at each growth (a tenth of the jump's instructions).
    End tags whose name begins with neither "b" nor "h"
    come first, without the look for </head> and </body> (a seventh of an end tag's cost)."""
    not_script, not_script_end = (b"", b"") if script_end else (rb"(?!script" + END + rb")", b"|script")
    return re.compile(
        rb"[^<]*+(?>(?:(?>(?>(?:</" + not_script + rb"[ac-gi-z]" + _bytes_but(b""">"'""") + rb"*+>|</(?!(?:head|body" + not_script_end + rb")" + END + rb")[a-z]" + _bytes_but(b""">"'""") + rb"*+>"
        rb"|<" + NOT_INTERESTING + NAME_CHAR + rb"*+" + COMMON_ATTRIBUTES
        + (b"|" + images if images else b"")
        + rb"|<(?!" + INTERESTING + END + rb")[a-z]" + NAME_CHAR + rb"*+" + ANY_ATTRIBUTES
        + rb"|<!--" + COMMENT_BODY + rb"|<!(?!--|doctype)[^>]*+>|<\?[^>]*+>|</[^a-z>][^>]*+>|</>|<(?=[^a-z!/?]))[^<]*+){0,64}))*)"
    )


SKIP = skip_pattern()
# While an SVG script cut short by a tag that left SVG is held (RewriteStream._script_start), its
# code ends at the next </script> the tree builder reads: SKIP_HELD stops there, so that the script
# is judged on the same code whether the body came whole or in pieces.
SKIP_HELD = skip_pattern(script_end=False)
# Where an attribute named on... or ping may begin: after a space, a "/" or a quote, with an "="
# after the name (without a value neither does anything). Each is led by its literal name; the
# byte before is checked behind it. Looked for in each start tag that SKIP stops at (it jumps over
# none that holds one, see COMMON_NAME); a hit in a quoted value only costs a closer look. No
# handler's name holds a quote (from each '"on' of '"on"on"on...' the name ran to the tag's end).
HANDLER_OR_PING = re.compile(rb"""on(?<=[\t\n\f\r /"']on)[^\t\n\f\r /=>"']*+[\t\n\f\r ]*+=|ping(?<=[\t\n\f\r /"']ping)[\t\n\f\r ]*+=""")
# A whole tag of that shape, its name in group 1.
SIMPLE_TAG = re.compile(rb"</?([a-z][^\t\n\f\r />]*+)" + SIMPLE_ATTRIBUTES + rb">")
# In foreign content every tag counts (the tree builder's stack of SVG/MathML elements). An atomic
# group around "*", not "*+" (see ATTRIBUTES).
SKIP_FOREIGN = re.compile(rb"(?>(?:[^<]++|<(?=[^a-z!/?])|<!--" + COMMENT_BODY + rb"|<!(?!--|doctype|\[)[^>]*+>|<\?[^>]*+>|</[^a-z>][^>]*+>|</>)*)")
COMMENT_END = re.compile(rb"--!?>")
SCRIPT_DATA = re.compile(rb"<!--|</script[\t\n\f\r />]")
SCRIPT_ESCAPED = re.compile(rb"-->|</script[\t\n\f\r />]|<script[\t\n\f\r />]")
SCRIPT_DOUBLE_ESCAPED = re.compile(rb"-->|</script[\t\n\f\r />]")
RAW_ENDS: dict[bytes, re.Pattern[bytes]] = {}

# The tokenizer's states, as far as the rewriter tells them apart.
DATA, MARKUP, TAG, COMMENT, BOGUS, CDATA, RAW, SCRIPT, SCRIPT_ESC, SCRIPT_DESC, PLAINTEXT, NOSCRIPT = range(12)
# Inside a tag (after its name): where a resumed tag goes on.
BEFORE_NAME, IN_NAME, AFTER_NAME, BEFORE_VALUE, DOUBLE_QUOTED, SINGLE_QUOTED, UNQUOTED = range(7)
SEPARATORS = re.compile(SEPARATOR_RUN)
SPACES = re.compile(rb"[\t\n\f\r ]*+")
NAME_CHARS = re.compile(rb"[^\t\n\f\r /=>]*+")
UNQUOTED_CHARS = re.compile(rb"[^\t\n\f\r >]*+")

# The tree builder: raw text and RCDATA elements (their end tag is the only markup inside).
RAW_TEXT = frozenset([b"style", b"xmp", b"iframe", b"noembed", b"noframes", b"title", b"textarea"])
# Start tags that end foreign content (the standard's "in foreign content" list).
BREAKOUT = frozenset(
    b"b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul var".split()
)
INTEGRATION_POINTS = frozenset(
    [(b"svg", b"foreignobject"), (b"svg", b"desc"), (b"svg", b"title"), (b"math-html", b"annotation-xml")]
    + [(b"math", n) for n in (b"mi", b"mo", b"mn", b"ms", b"mtext")]
)
HTML_ENCODINGS = (b"text/html", b"application/xhtml+xml")
# MathML text integration points, where <mglyph> and <malignmark> are MathML elements all the same
# (and what follows them is foreign content again).
MATH_TEXT_POINTS = frozenset((b"math", n) for n in (b"mi", b"mo", b"mn", b"ms", b"mtext"))
MATH_IN_TEXT = (b"mglyph", b"malignmark")
FONT_BREAKOUT = (b"color", b"face", b"size")

SCRIPT_KIND, IMG, IFRAME, LINK = range(4)

# Where body_end goes: before the page's last "</body" when only "</html>" and whitespace follow
# it, else at the very end (a browser puts what follows </body> or </html> into the body all the
# same). Decided on bytes alone, so the fast path below places it exactly as the tokenizer does.
BODY_END_TAIL = re.compile(rb"</body[\t\n\f\r ]*>[\t\n\f\r ]*(?:</html[\t\n\f\r ]*>[\t\n\f\r ]*)?\Z")
BODY_TAIL_LIMIT = 4096  # longer than any such tail
# Markup on which a visitor who allowed everything may still get a changed tag: consentmw's and other
# consent tools' markings (a category the policy lacks stays inert, an inert script is switched on)
# and held addresses (switched on here). The rewriter looks closer only at tags with "data-" or
# "optanon" in them, so every change it makes then needs one of these, written in any case. One
# search over the page: it stops at each "-" only (a case-free byte) and looks further only when
# the byte after it can begin a marking's name (most "-" are in aria-label, data-id and the like).
MARKINGS = (
    rb"[oO](?i:nsentmw(?<=data-consentmw)|okie(?:consent(?<=data-cookieconsent)|block-src(?<=data-cookieblock-src)))"
    rb"|[aA](?i:tegory(?:(?<=optanon-category)CATEGORY)|me(?<=data-name))|[rR](?i:c(?<=data-src))|[tT](?i:-src(?<=data-ot-src))"
)
# Each marking's name is checked forward first and behind it last, and each alternative is led by a
# character class, which the engine tries without entering it: so the many data-category of a
# shop's product cards cost one look behind each, not one per marking.
MARKED = re.compile(rb"-[cnsoCNSO](?:" + MARKINGS.replace(b"CATEGORY", b"") + rb")")
# data-category marks only an inert <script> (vanilla-cookieconsent); shops put it on product cards.
# The first of either (group 1, empty: data-category), so that a page holding neither costs one search.
MARKED_OR_CATEGORY = re.compile(rb"-[cnsoCNSO](?:" + MARKINGS.replace(b"CATEGORY", rb"|(?<=data-category)()") + rb")")
# A "<script" (more than the tokenizer takes for a tag) that may hold a data-category attribute: its
# tag read as TAG_REST reads it, in a lookahead, provided no attribute's name begins with
# data-category (in any case): at one that does, the match stops short of the tag's ">". Elsewhere
# in a tag (a value, the middle of a name) it makes no attribute of that name, which is all the
# rewriter asks for. A "<" in a name or an unquoted value stops it short too (such a tag goes to the
# tokenizer): so a read from one "<script" never passes the next "<" outside a quoted value, and
# no byte is read by more than a few of them ('<script <script ...>' took quadratic time).
# The usual script tag is read first with a simpler grammar: attributes whose names hold no "-" (nor
# "=", a quote or "<"), each separated by whitespace and either valueless or with a double-quoted
# value right after its "=", then the tag's end. Where it matches, the tokenizer reads the same
# attributes, so none is data-category; any other tag gets the full grammar.
SCRIPT_WITH_CATEGORY = re.compile(
    rb"<(?i:script)(?=[\t\n\f\r />])"
    rb"""(?!(?>(?:[\t\n\f\r ]++[^\t\n\f\r />"'=<-]++(?:="[^"]*+")?)*)[\t\n\f\r ]*+/?>)(?!"""
    + ATTRIBUTES_WITH_GUARD.replace(b"NAME_GUARD", rb"(?![dD](?i:ata-category))").replace(b"STOP", b"<")
    + rb"/?>)"
)
HEAD_WITHIN = 1024  # the fast path needs <head> in this many bytes
FEED_SLICE = 65536  # RewriteStream.feed reads a longer body in slices of this size
SAFE_IMAGE_HOSTS = 64  # hosts in a site's safe_image_pattern; images from others get the closer look
IMAGE_TAG_LIMIT = 1024  # image tags up to this long have their verdict remembered (SafeImages)
IMAGE_VERDICT_BYTES = 262144  # ... this many bytes of them for a site (a shop's busiest pages), then forgotten
IMAGE_VERDICT_ENTRY = 100  # what a verdict costs beside its tag's bytes (the key's object, the dict's entry)
IMAGE_LOOKUPS_SEEN = 64  # look-ups of image verdicts counted before they decide how a site's pages are read
# The usual start of a document, read as the tokenizer reads it, up to the end of its <head> tag:
# a byte order mark, whitespace, a doctype, comments, an <html> tag. Nothing in it is changed, and
# head goes right after it. Any other start goes through the tokenizer.
DOCUMENT_START = re.compile(
    rb"(?i)(?:\xef\xbb\xbf)?(?>(?:[\t\n\f\r ]++|<!doctype[^>]*+>|<!--" + COMMENT_BODY + rb")*)"
    rb"(?:<html(?=[\t\n\f\r />])" + ATTRIBUTES + rb"/?>[\t\n\f\r ]*+)?<head(?=[\t\n\f\r />])" + ATTRIBUTES + rb"/?>"
)
ELEMENT_KINDS = {b"img": IMG, b"image": IMG, b"source": IMG, b"iframe": IFRAME, b"link": LINK}

# Hosts an image may load from (src=, and data-src= and the like, which only cost a closer look).
# An address's host as a URL parser reads it: after controls and spaces, with "\\" for "/", and
# "https:" followed by any number of slashes (a relative address yields its first segment). Tabs
# and newlines, which a URL parser drops, are taken in, so that the host looks odd (below).
# Two patterns, each led by its literal name, which the regex engine finds fast ("src(?:set)?"
# before the rest costs four times as much). The host is read in a lookahead, so that the next
# match may begin inside it: in 'alt="src=" src="//tracker/"', the first "src=" is in a value and
# its "host" is the real attribute, which a match taking it in would hide. It stops after an "="
# (an odd host, below), so that no byte is read again by more than one match ('src=src=src=...').
SRC_HOSTS = re.compile(rb"""src(?:set)?\s*=\s*["']?[\x00-\x20]*(?:https?:)?[/\\]*(?=([^/\\"' >?#:=]+=?))""")
HREF_HOSTS = re.compile(rb"""href\s*=\s*["']?[\x00-\x20]*(?:https?:)?[/\\]*(?=([^/\\"' >?#:=]+=?))""")
# The hosts of a srcset's candidates after the first (an image picks one by its own rules).
SRCSET_HOSTS = re.compile(rb""",[\x00-\x20]*(?:https?:)?[/\\]*(?=([^/\\"' >?#:,=]+=?))""")
# A host a browser reads otherwise than it is written: user info, escapes, character references,
# tabs or newlines, a trailing dot, anything outside ASCII (full-width letters, an ideographic
# full stop, a soft hyphen: the URL standard maps them). Such a tag gets a closer look.
ODD_HOST = re.compile(rb"[@%&=\t\n\r\f\x80-\xff]|\.\Z")
# An <img>, <image> or <source> start tag, in HTML content, that loads only from hosts already ruled
# out on the site's pages (HTMLRewriter.safe_hosts) or from relative addresses: jumped over in one
# match, as the tree builder would have left it. A strict part of SIMPLE_ATTRIBUTES' shape: each
# attribute after a space or "/", "=" right after its name, src, srcset and class double-quoted.
# No data-* attribute (other tools' markings and held addresses) and no "optanon" in the class.
# An address: "//" or "http(s)://", a safe host, then "/", "?" or "#" (nothing a URL parser reads
# otherwise: no user info, port, escape or trailing dot can come between); or relative, without a
# scheme, a second slash or backslash at its start, a character reference, or any control or space
# (a URL parser drops tabs and newlines, "/\t/host" is "//host"). A srcset's candidates are such
# addresses with a density or width, split at commas. Repeats of groups are atomic (see ATTRIBUTES).
IMAGE_NAME = rb"<(?:img|image|source)"
# A width or height that shows nothing, as the rules for dimension values read it: less than 2 px
# ("1", "01", " 1", "0.5", "1.0", "1px").
PIXEL_FRACTION = rb"(?:\.[0-9]*+)?(?![0-9%])"
PIXEL_SIZE = rb"\s*+(?:0*+1|0++)" + PIXEL_FRACTION
# In CSS, only the width and height properties themselves, in px or without a unit.
CSS_SIZE = rb"\s*+(?:0*+1|0++)(?:\.[0-9]*+)?(?:px)?(?![0-9a-z%])"
# What is_pixel looks for after an "=" (a width or height attribute) and after a ":" (none, hidden,
# or a CSS width or height: after "h", "t" or a space).
PIXEL_AFTER_EQUALS = rb"""\s*+["']?""" + PIXEL_SIZE
PIXEL_AFTER_COLON = rb"\s*+(?:none|hidden)|(?<=[ht\s]:)" + PIXEL_SIZE
# PIXEL_AFTER_EQUALS as safe_image_pattern looks for it after every "=" of an image tag: the same
# matches, each alternative led by its first byte, which the regex engine checks before it enters
# one, so that a value beginning otherwise (nearly every value) costs one step, not six.
PIXEL_AFTER_EQUALS_LED = (
    rb"""(?:\s\s*+["']?\s*+(?:0*+1|0++)""" + PIXEL_FRACTION + rb"""|["']\s*+(?:0*+1|0++)""" + PIXEL_FRACTION
    + rb"|1" + PIXEL_FRACTION + rb"|0(?:0*+1|0*+)" + PIXEL_FRACTION + rb")"
)


def safe_image_pattern(hosts: Collection[bytes], *, no_pixel: bool = False) -> re.Pattern[bytes]:
    """The image tags that load only from ``hosts`` or from relative addresses. With ``no_pixel``
    (a site whose images come from an unknown third party's host), only those in which is_pixel
    finds nothing: no "=" in the tag followed by PIXEL_AFTER_EQUALS, no ":" by PIXEL_AFTER_COLON,
    no attribute named hidden."""

    def but(excluded: bytes) -> bytes:
        # A class of several bytes as ranges (_bytes_but): an address's bytes cost the engine half
        # as much so (one byte but a quote is the engine's own fast loop).
        return _bytes_but(excluded) if len(excluded) > 1 else b"[^" + excluded + b"]"

    def text(excluded: bytes, more: bytes = b"*") -> bytes:
        # Bytes but `excluded`. With no_pixel, "=" and ":" are let in by a second alternative that
        # looks after each: most values and addresses have neither.
        if not no_pixel:
            return but(excluded) + more + b"+"
        plain = but(excluded + b"=:")
        special = [b"=(?!" + PIXEL_AFTER_EQUALS_LED + b")"] if b"=" not in excluded else []
        special += [b":(?!" + PIXEL_AFTER_COLON + b")"] if b":" not in excluded else []
        return b"(?:" + plain + more + b"+|(?>(?:" + plain + b"++|" + b"|".join(special) + b")" + more + b"))"

    # Right after a value's opening quote (or the "=" of one unquoted): what follows an "=".
    start = b"(?!" + PIXEL_AFTER_EQUALS_LED + b")" if no_pixel else b""
    colon = b":" if no_pixel else b""
    host = b"|".join(re.escape(h) for h in sorted(hosts, key=len, reverse=True)) or b"(?!)"
    address = bytes(range(0x21)) + b"\"',\\"  # controls, spaces, quotes, commas, backslashes
    # An optional part is an alternative with an empty one, not "?", which the engine runs as a repeat.
    url = rb"(?:(?:https?:|)//(?:" + host + rb")(?=[/?#])" + text(address) + rb"|(?![/\\]{2})" + text(address + b":&") + rb")"
    candidate = url + rb"(?>[\t\n\f\r ]++[0-9.]++[wx]|)"
    srcset = rb"[\t\n\f\r ]*+" + candidate + rb"(?>(?:[\t\n\f\r ]*+,[\t\n\f\r ]*+" + candidate + rb")*)[\t\n\f\r ]*+"
    optanon = rb"(?>(?:" + but(b'"o' + (b"=:" if no_pixel else b"")) + rb"++|o(?!ptanon))*)"  # a class without OneTrust's marking
    # Any other attribute but data-* (other tools' markings, held addresses) and event handlers and
    # ping (see COMMON_NAME), "=" right after its name.
    other = (
        rb"(?!src(?:set)?[\t\n\f\r /=>]|data-|class[\t\n\f\r /=>]|on|ping=" + (rb"|hidden[\t\n\f\r /=>]" if no_pixel else b"") + rb")" + but(SPACE + b"""/=>"'<""" + colon) + b"++"
        + rb'(?>="' + start + text(b'"') + rb""""|='""" + start + text(b"'") + rb"""'|=""" + start + but(SPACE + b""">"'=<`""" + colon) + rb"++|)"
    )
    attribute = rb'(?:src="' + start + url + rb'"|srcset="' + start + srcset + rb'"|class="' + start + optanon + rb'"|' + other + rb")"
    return re.compile(IMAGE_NAME + rb"(?>(?:[\t\n\f\r /]++" + attribute + rb")*)[\t\n\f\r /]*+>")


# An image that shows nothing: a tracking pixel if it loads from a third party.
# One pattern per way, each led by a literal (one pattern of four alternatives tries them all at
# every byte of the tag: 12 us an image).
PIXEL = tuple(
    re.compile(p)
    for p in (
        rb"width\s*(?:=" + PIXEL_AFTER_EQUALS + rb"|(?<![-a-z]width)\s*:" + CSS_SIZE + rb")",
        rb"height\s*(?:=" + PIXEL_AFTER_EQUALS + rb"|(?<![-a-z]height)\s*:" + CSS_SIZE + rb")",
        rb"display\s*:\s*none",
        rb"visibility\s*:\s*hidden",
    )
)
SRC_AND_TYPE = (b"src", b"type", b"href", b"xlink:href")  # an SVG script loads its href
SRC_AND_SRCSET = (b"src", b"srcset")
LINK_ADDRESSES = (b"href", b"imagesrcset")
CHARREF = re.compile(rb"&[#a-zA-Z]")
OPTANON = re.compile(rb"(?:^|\s)optanon-category-([a-z0-9-]+)", re.IGNORECASE)
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Attributes that make a request of their own, whatever the element: an event handler's code (the
# inline classifier reads it as a script's) and an <a>/<area> ping. One that names a tracker of a
# refused category is renamed data-consentmw-<name>; the visitor's next page after consent has it.
PING_ELEMENTS = (b"a", b"area")
# Other attributes whose address Chromium fetches as the page loads, with or without scripting; one
# that names a tracker of a refused category is renamed like a handler (docs/blocking.md).
LOADING_ATTRIBUTES = {
    b"embed": (b"src",),
    b"object": (b"data",),
    b"frame": (b"src",),  # in a <frameset>
    b"video": (b"src", b"poster"),
    b"audio": (b"src",),
    b"input": (b"src",),  # type=image
    b"body": (b"background",),
    b"iframe": (b"srcdoc",),  # a document: judged by what it holds, as a data: URL's
}
EMBEDDING = (b"embed", b"object", b"frame")  # what they load from an unknown host is named as an iframe's
# Addresses whose content is code or a document: judged by what is in them.
CODE_URL = re.compile(rb"[\x00-\x20]*(javascript|data):", re.IGNORECASE)
URL_TABS = re.compile(rb"[\t\n\r]")
SPECULATION_RULES = b"speculationrules"
# A host in a speculation rule (a URL or a URL pattern such as "https://*.host/*").
RULE_HOST = re.compile(rb"(?:https?:)?//(?:\*\.)?([a-z0-9.-]+)")

# Script types a browser runs (the HTML spec's JavaScript MIME types, plus "module").
JS_TYPES = frozenset(
    b"text/" + t
    for t in (b"javascript", b"ecmascript", b"jscript", b"livescript", b"x-javascript", b"x-ecmascript")
    + tuple(b"javascript1." + bytes([48 + i]) for i in range(6))
) | {b"", b"module", b"application/javascript", b"application/ecmascript", b"application/x-javascript", b"application/x-ecmascript"}
# An import map runs no code, but its addresses load when a module imports them.
IMPORTMAP = b"importmap"
INERT = b"text/plain"
# Where other consent tools keep the real address of an inert iframe, image or script.
HELD_SRC = (b"data-consentmw-src", b"data-src", b"data-cookieblock-src", b"data-ot-src")


class Attr(NamedTuple):
    name: bytes  # lowercased
    start: int  # where the attribute (its name) starts in the tag
    name_end: int
    end: int
    value: bytes | None  # raw, as written, without quotes


def parse_attrs(tag: bytes, start: int, end: int) -> dict[bytes, Attr]:
    """The attributes of a complete tag, between its name (``start``) and its ">" (``end``)."""
    attrs: dict[bytes, Attr] = {}
    for m in ATTR.finditer(tag, start, end):
        name = m.group(1).lower()
        value = m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None else m.group(4)
        if value is None and m.end() > m.end(1):
            value = b""  # "name=" right before ">"
        # The first of a repeated attribute wins, as in browsers; the others are kept under a key
        # no real name has, so that moving a src aside moves them all (else the next one takes over).
        key = name if name not in attrs else name + b" %d" % m.start()
        attrs[key] = Attr(name, m.start(), m.end(1), m.end(), value)
    return attrs


def first_values(tag: bytes, low: bytes, start: int, end: int, names: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """The first value of each of `names` in a tag (`low` is `tag` lowercased), decoded and
    lowercased, as URLs or types to match. Read attribute by attribute, so "src=" written inside
    another attribute's quoted value (an alt text, a title) is never taken for the tag's own address."""
    found: dict[bytes, bytes] = {}
    for m in ATTR.finditer(low, start, end):
        name = m.group(1)
        if name in names and name not in found:
            # A valueless attribute is the empty string: it wins over a later repeat all the same.
            i = m.lastindex or 0
            value = m.group(i) if i > 1 else b""
            found[name] = (url_of(tag[m.start(i) : m.end(i)]).lower() if value.find(b"&") >= 0 else value).strip(b"\t\n\f\r ")
    return found


def is_pixel(low: bytes | bytearray, start: int, end: int) -> bool:
    """Whether an image tag (``low[start:end]``, lowercased) shows nothing: a tracking pixel if it
    loads from a third party. The hidden attribute hides it too: read as a name, not in a value."""
    return any(p.search(low, start, end) for p in PIXEL) or (
        low.find(b"hidden", start, end) >= 0 and any(m.group(1) == b"hidden" for m in ATTR.finditer(low, start, end))
    )


def type_of(attr: Attr | None) -> bytes:
    return url_of(attr.value or b"").split(b";")[0].strip().lower() if attr is not None else b""


def quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b'"', b"&quot;") + b'"'


def url_of(value: bytes) -> bytes:
    """An attribute value as the browser reads it: character references decoded (named ones are
    case-sensitive, so this takes the value as written, not lowercased)."""
    if b"&" not in value:
        return value
    if CHARREF.search(value.replace(b"&amp;", b"")) is None:
        return value.replace(b"&amp;", b"&")
    return html.unescape(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def raw_end(name: bytes) -> re.Pattern[bytes]:
    """The end tag that closes a raw text or RCDATA element (an "appropriate end tag")."""
    found = RAW_ENDS.get(name)
    if found is None:
        found = RAW_ENDS[name] = re.compile(b"</" + re.escape(name) + END)
    return found


class SafeImages:
    """A site's safe_image_pattern, and its verdict on each image tag it was asked about, as written
    up to the tag's first ">": a shop shows the same product images on every page and to every
    visitor, and a look-up takes half the time of the match (1.3 against 2.7 us for a product card's)."""

    def __init__(self, hosts: Collection[bytes], *, no_pixel: bool = False) -> None:
        self.pattern = safe_image_pattern(hosts, no_pixel=no_pixel)
        # SKIP jumping over the images the pattern matches as well, without a stop at each: for a
        # site whose pages show images not seen before (a product card then costs 10k instructions
        # against 25k for a stop, a look-up that finds nothing and the match; one whose verdict
        # is known costs 6k). The pattern matches no image holding an event handler or ping: SKIP
        # stops there, as _safe_image_end would. Made when needed.
        self.skip: re.Pattern[bytes] | None = None
        self.jumps: dict[bytes, bool] = {}
        self.size = 0  # what the verdicts cost: their keys' bytes and IMAGE_VERDICT_ENTRY each
        self.known = self.missed = 0  # look-ups of verdicts lately that found one, and that did not
        # Look-ups pay while this many times as many find a verdict as find none (measured break-
        # even: 7 in 10 images known; 5 in 10 for images from an unknown host, which cost half
        # again as much inside SKIP, where the pattern looks for a pixel size after each "=").
        self.enough = 1 if no_pixel else 3
        self.pages = 0

    def skip_for_page(self) -> re.Pattern[bytes]:
        """SKIP, stopping at each image to look its verdict up, while enough look-ups find one
        (and on every eighth page, to see whether they would again); else self.skip. The same
        bytes come out either way."""
        self.pages += 1
        if self.known + self.missed >= 1024:  # the latest pages' count most
            self.known //= 2
            self.missed //= 2
        if self.known + self.missed < IMAGE_LOOKUPS_SEEN or self.known >= self.enough * self.missed or self.pages % 8 == 0:
            return SKIP
        if self.skip is None:
            self.skip = skip_pattern(self.pattern.pattern)
        return self.skip


class HTMLRewriter:
    """What rewriting needs from a policy, worked out once."""

    def __init__(self, policy: Policy, *, trackers: TrackerRules | None = None, inline_limit: int = 65536) -> None:
        self.policy = policy
        self.trackers = trackers if trackers is not None else TrackerRules(policy)
        # An inline script is classified on at most this many bytes of its code.
        self.inline_limit = inline_limit
        self.by_service = {t.id: t.category for t in self.trackers.trackers}
        self._needed: frozenset[str] | None = None
        self.all_allowed(frozenset())  # works out what the fast path needs, once
        self.rewritten: dict[tuple[bytes, tuple[str, ...], bool], bytes | bool] = {}
        self._safe_hosts: dict[bytes | None, dict[bytes, bool]] = {}
        # (content, allowed, site, inside a CDATA section's text) -> what a <noscript>'s content becomes (see _noscript_whole).
        self.noscripts: dict[tuple[bytes, frozenset[str], bytes | None, bool], bytes] = {}
        # (start tag, site) -> categories its src needs, None for an inline script (see _script_tag).
        self.script_tags: dict[tuple[bytes, bytes | None], tuple[str, ...] | None] = {}
        self._safe_images: dict[bytes | None, tuple[int, int, SafeImages]] = {}

    def safe_image(self, site: bytes | None) -> SafeImages | None:
        """safe_image_pattern of the site's safe hosts known when a page begins (up to SAFE_IMAGE_HOSTS)."""
        if self.trackers.ungated_src:
            return None  # a site's own pattern may match any address
        safe = self.safe_hosts(site)
        known = self._safe_images.get(site)
        if known is None or (known[0] != len(safe) and known[1] < SAFE_IMAGE_HOSTS):
            hosts = [h for h in safe if h.find(b".") >= 0][:SAFE_IMAGE_HOSTS]
            # A pixel from an unknown third party's host is never jumped over: it is to be named.
            no_pixel = not all(safe[h] for h in hosts)
            known = (len(safe), len(hosts), SafeImages(hosts, no_pixel=no_pixel))
            if len(self._safe_images) < 64:
                self._safe_images[site] = known
        return known[2]

    def safe_hosts(self, site: bytes | None) -> dict[bytes, bool]:
        """Hosts that images and links on pages of ``site`` load from and that are surely no
        tracker's: a tag loading only from them needs no closer look. True for the site's own and
        the catalog's; False for an unknown third party's, whose pixels are named as left live
        (an image from it that shows nothing still gets the closer look)."""
        found = self._safe_hosts.get(site)
        if found is None:
            found = {}
            if len(self._safe_hosts) < 64:  # a process serves a handful of sites
                self._safe_hosts[site] = found
        return found

    def stream(self, allowed: Collection[str], *, head: bytes = b"", body_end: bytes = b"", page: tuple[bytes, str] | None = None) -> RewriteStream:
        """A stream for one response. ``allowed``: the visitor's allowed category ids (required
        ones included). ``head`` goes right after ``<head>``; ``body_end`` before the closing
        ``</body>`` (see BODY_END_TAIL). Both are added only to whole documents (with a doctype,
        ``<html>``, ``<head>`` or ``<body>``), never to fragments. ``page``: the page's host
        (lowercase, no port) and path, to report third-party tags left live."""
        return RewriteStream(self, frozenset(allowed), head, body_end, page)

    def rewrite(self, allowed: Collection[str], body: bytes, *, head: bytes = b"", body_end: bytes = b"", page: tuple[bytes, str] | None = None) -> bytes:
        """A whole body at once: the same bytes as ``stream(...)`` fed the body and closed. A
        visitor whose choices allow every category any tag could need, on a page whose ``<head>``
        comes within its first bytes and which holds no markup of other consent tools, gets the
        insertions alone, without the page being read tag by tag."""
        allowed = frozenset(allowed)
        if self.all_allowed(allowed):
            fast = self._insert_only(allowed, body, head, body_end, page)
            if fast is not None:
                return fast
        stream = RewriteStream(self, allowed, head, body_end, page)
        return stream.feed(body) + stream.close()

    def all_allowed(self, allowed: frozenset[str]) -> bool:
        needed = self._needed
        if needed is None:
            cats = {t.category for t in self.trackers.trackers}
            for name, _kind, category in hosts().entities:
                category = self.trackers.entity_categories.get(name, category)
                if category is not None:
                    cats.add(self.policy.category_for(category) or "?" + category)
            needed = self._needed = frozenset(cats)
        return needed <= allowed

    def _insert_only(self, allowed: frozenset[str], body: bytes, head: bytes, body_end: bytes, page: tuple[bytes, str] | None) -> bytes | None:
        m = MARKED_OR_CATEGORY.search(body)
        if m is not None:
            if m.group(1) is None or MARKED.search(body, m.end()) is not None:
                return None  # a marking (group 1 is a data-category)
            if SCRIPT_WITH_CATEGORY.search(body) is not None:
                return None
        # The tokenizer reads the start of the page, up to its <head> tag, and adds head there.
        start = DOCUMENT_START.match(body, 0, HEAD_WITHIN) if head else None
        if start is not None:
            at = start.end()
            out: list[bytes | memoryview] = [body[:at], head]
        else:
            at = body[:HEAD_WITHIN].lower().find(b"<head")
            if at < 0:
                return None
            prefix = RewriteStream(self, allowed, head, b"", page)
            out = [prefix.feed(body[:at])]
            while not (prefix.head_done and prefix.document and prefix.state == DATA and not prefix.held and not prefix.foreign):
                gt = body.find(b">", at, HEAD_WITHIN)
                if gt < 0:
                    return None
                out.append(prefix.feed(body[at : gt + 1]))
                at = gt + 1
        rest = memoryview(body)  # the page's bytes are copied once, into the answer
        if body_end:
            # The last "</body" is nearly always in the last few hundred bytes: they are looked at first.
            for tail in (max(0, len(body) - 512), max(0, len(body) - BODY_TAIL_LIMIT)):
                low_tail = body[tail:].lower()
                cut = low_tail.rfind(b"</body")
                if cut >= 0:
                    break
            if cut >= 0 and BODY_END_TAIL.match(low_tail, cut):
                cut += tail
                if cut < at:
                    return None  # the tokenizer read past that </body> looking for <head>: it places body_end
                out += (rest[at:cut], body_end, rest[cut:])
            else:
                out += (rest[at:], body_end)
        else:
            out.append(rest[at:])
        return b"".join(out)

    def marked_categories(self, kind: int, attrs: dict[bytes, Attr], script_type: bytes | None) -> tuple[str, ...] | None:
        """Categories that markup of consentmw or of another consent tool gives the tag, if any."""
        names: list[bytes]
        if (a := attrs.get(b"data-consentmw-category")) and a.value:
            names, tool = a.value.split(), "consentmw"
        elif (a := attrs.get(b"data-cookieconsent")) and a.value and a.value.strip().lower() == b"ignore":
            return ()  # Cookiebot: the site's own, never held back
        elif (a := attrs.get(b"data-cookieconsent")) and a.value:
            names, tool = [n.strip() for n in a.value.split(b",") if n.strip()], "Cookiebot"
        elif (a := attrs.get(b"class")) and a.value and (m := OPTANON.search(a.value)):
            names, tool = [n for n in m.group(1).split(b"-") if n], "OneTrust"
        elif kind == SCRIPT_KIND and script_type == INERT and (a := attrs.get(b"data-category")) and a.value:
            if a.value.startswith(b"!") or ((attrs.get(b"data-service") or a).value or b"").startswith(b"!"):
                return None  # runs once its category is refused: the banner knows when; the page stays as written
            names, tool = [a.value.strip()], "vanilla-cookieconsent"
        elif (a := attrs.get(b"data-name")) and a.value and (script_type == INERT if kind == SCRIPT_KIND else b"src" not in attrs):
            return (self.klaro_category(a.value.decode("utf-8", "replace").strip()),)
        else:
            return None
        cats = []
        for raw in names:
            name = raw.decode("utf-8", "replace")
            cat = self.policy.category_for(name)
            if cat is None:
                self.trackers.warn_undeclared(f"{tool} category {name!r}", f"{tool}-marked", name)
                cat = "?" + name
            cats.append(cat)
        return tuple(dict.fromkeys(cats)) or None

    def klaro_category(self, name: str) -> str:
        service = CAMEL.sub("-", name).lower()
        cat = self.by_service.get(service) or self.by_service.get(name) or self.policy.category_for(name)
        if cat is None:
            self.trackers.warn_undeclared(f"Klaro service {name!r}", "Klaro-marked", name)
            return "?" + name
        return cat


class RewriteStream:
    """One response's tokenizer. Positions index ``buf``, which holds the bytes from the first one
    not yet written out (or still needed to go on) to the last one fed."""

    def __init__(
        self, rw: HTMLRewriter, allowed: frozenset[str], head: bytes, body_end: bytes, page: tuple[bytes, str] | None = None, *, scripting: bool = True, in_cdata: bool = False
    ) -> None:
        self.rw = rw
        self.page = page
        self.allowed = allowed
        self.head = head
        self.body_end = body_end
        # False inside <noscript>, read as a browser without JavaScript reads it (pixels live there).
        self.scripting = scripting
        # Fed the text of a CDATA section, which no "]]>" closes: a section begun in it runs to its end.
        self.in_cdata = in_cdata
        self.buf = bytearray()
        self.low = bytearray()  # buf lowercased (ASCII only, as the tokenizer does)
        self.state = DATA
        self.pos = 0  # where the current state goes on
        self.out_pos = 0  # buf[:out_pos] has been written out
        self.out: list[bytes | bytearray] = []
        # The tag being read: where its "<" and its name's end are, whether it is an end tag, the
        # state inside it (resumed when it is cut by a chunk's end).
        self.tag_start = self.name_end = -1
        self.end_tag = False
        self.tag_state = BEFORE_NAME
        self.raw_name = b""  # the raw text element being read
        self.held = False  # an inline script's start tag is held back until its code is seen
        self.held_start = self.code_start = 0  # where that start tag and its code start
        self.foreign: list[tuple[bytes, bytes]] = []  # open SVG/MathML elements: (namespace, name)
        self.open_names: dict[bytes, int] = {}  # how many of each name are in it (an end tag's look-up)
        self.noscript: RewriteStream | None = None
        self.cdata: RewriteStream | None = None  # a CDATA section's text read as markup (see _cdata)
        self.code_section = False  # the CDATA section being read is an SVG script's code (see _cdata)
        self.code_cut = -1  # where a "</script" is in it
        self.document = False
        self.head_done = not head
        self.tail = bytearray()  # output kept back to place body_end
        self.safe_hosts = rw.safe_hosts(page[0] if page is not None else None)
        self.safe_image = rw.safe_image(page[0] if page is not None else None)
        self.skip = SKIP if self.safe_image is None else self.safe_image.skip_for_page()
        self.at_body_end = False  # tail starts with "</body"
        self.states = (
            self._data, self._markup, self._tag, self._comment, self._bogus, self._cdata, self._raw,
            self._script_data, self._script_escaped, self._script_double_escaped, self._plaintext, self._noscript,
        )  # fmt: skip

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        # Read a slice at a time: a tag whose attributes are held grows in the buffer, which moves
        # what follows it, and that must not be the rest of a big page fed whole (a page of tracker
        # handlers cost n*n). The output does not depend on where a body is cut.
        whole, low = memoryview(data), memoryview(data.lower())
        parts: list[bytes | bytearray] = []
        for i in range(0, len(data), FEED_SLICE):
            self.buf += whole[i : i + FEED_SLICE]
            self.low += low[i : i + FEED_SLICE]
            parts += self._run(final=False)
        out = b"".join(parts)
        return self._place_body_end(out) if self.body_end else out

    def close(self) -> bytes:
        out = b"".join(self._run(final=True))
        if self.document and not self.head_done:
            out += self.head
        self.head_done = True
        if not self.body_end:
            return out
        out = self._place_body_end(out)
        tail, self.tail = bytes(self.tail), bytearray()
        if not self.document:
            return out + tail
        if self.at_body_end and BODY_END_TAIL.match(tail.lower()):
            return out + self.body_end + tail
        return out + tail + self.body_end

    def _place_body_end(self, out: bytes) -> bytes:
        """Output up to the last "</body" seen so far, which is kept back (with what follows it)
        until a later one or the end shows whether body_end goes before it; or up to the last
        bytes that could begin one."""
        # Positions are in tail + out, which is not made: a whole page would be copied in and out.
        tail = self.tail
        held, size = len(tail), len(tail) + len(out)
        # A "</body" further from the end than BODY_TAIL_LIMIT would be let go below all the same:
        # only the last bytes are looked at (a whole page at once was lowercased a second time).
        start = max(0, held - 6, size - BODY_TAIL_LIMIT - 6)
        cut = (bytes(tail[start:]) + out[max(0, start - held) :]).lower().rfind(b"</body")
        if cut >= 0:
            cut += start
            self.at_body_end = True
        else:
            cut = 0
        if not self.at_body_end or size - cut > BODY_TAIL_LIMIT:
            self.at_body_end = False
            # Keep back only what could begin "</body" (cut by the chunk's end).
            end = (bytes(tail[-5:]) + out[-5:])[-5:].lower()
            cut = size - next((k for k in range(len(end), 0, -1) if b"</body".startswith(end[-k:])), 0)
        if cut <= held:
            done = bytes(tail[:cut])
            del tail[:cut]
            tail += out
            return done
        self.tail = bytearray(out[cut - held :])
        return bytes(tail) + out[: cut - held] if held else out[:cut]

    # -- the driver ---------------------------------------------------------------------------

    def _run(self, final: bool) -> list[bytes | bytearray]:
        states = self.states
        while states[self.state](final):
            pass
        if final:
            if self.held:
                self._classify_inline(len(self.buf))
            if self.state == NOSCRIPT and self.noscript is not None:
                self._emit_to(self.pos)
                self.out.append(self.noscript.close())
                self.noscript = None
            keep = len(self.buf)
        elif self.held:
            keep = self.held_start
        elif self.state in (MARKUP, TAG):
            keep = self.tag_start
        elif self.state == NOSCRIPT or self.state == CDATA:
            keep = self.pos
        else:
            keep = len(self.buf)
        self._emit_to(keep)
        out = self.out
        self.out = []
        # Bytes written out are dropped now and then, not on every chunk (tiny chunks cost calls).
        forget = min(self.out_pos, self.pos, self.tag_start) if self.state in (MARKUP, TAG) else min(self.out_pos, self.pos)
        if forget >= 4096:
            self._forget(forget)
        return out

    def _forget(self, k: int) -> None:
        """Drop buf[:k], which is written out and never looked at again."""
        del self.buf[:k]
        del self.low[:k]
        self.pos -= k
        self.out_pos -= k
        self.tag_start -= k
        self.name_end -= k
        self.held_start -= k
        self.code_start -= k

    def _emit_to(self, j: int) -> None:
        if self.held and j > self.held_start:
            # A tag inside an SVG script's code is rewritten: the script is judged on its code so far.
            self._classify_inline(j)
        if j > self.out_pos:
            self.out.append(self.buf[self.out_pos : j])  # a copy: joined into the output below
            self.out_pos = j

    def _replace(self, start: int, end: int, replacement: bytes) -> None:
        self._emit_to(start)
        self.out.append(replacement)
        self.out_pos = end

    def _insert(self, at: int, extra: bytes) -> None:
        self._emit_to(at)
        self.out.append(extra)

    # -- tokenizer states (HTML standard, 13.2.5) -----------------------------------------------

    def _data(self, final: bool) -> bool:
        """Data state; text and tags that load nothing are jumped over in one match. A whole tag
        after it is read in one more (the tag open, name and attribute states at once), and the
        data state goes on here as long as the tag leaves the tokenizer in it."""
        low, skip = self.low, self.skip
        while True:
            n = len(low)  # a tag whose handlers were held has grown in the buffer
            if self.foreign:
                i = SKIP_FOREIGN.match(low, self.pos).end()
            elif self.held:
                i = SKIP_HELD.match(low, self.pos).end()
            else:
                i = skip.match(low, self.pos).end()
            if self.held and i - self.code_start >= self.rw.inline_limit:  # an SVG script's code
                self._classify_inline(i)
            if i >= n:
                self.pos = i
                return False
            self.tag_start = self.pos = i  # a "<": tag open state
            if (images := self.safe_image) is not None and not self.foreign and low.startswith((b"<im", b"<source"), i) and (j := self._safe_image_end(images, i)):
                self.pos = j  # an image from the site's own hosts, as _element would leave it
                continue
            # Most tags have the shape SKIP jumps over, cheaper to match than the whole grammar; a
            # tag ending in "/>" may be self-closing, which that grammar tells.
            m = SIMPLE_TAG.match(low, i)
            if m is not None and low[m.end() - 2] != 47:
                self.end_tag = low[i + 1] == 47
                self.name_end = m.end(1)
                self._tag_complete(m.end(), False)
            elif (m := WHOLE_TAG.match(low, i)) is not None:
                self.end_tag = m.end(1) > i + 1
                self.name_end = m.end(2)
                self._tag_complete(m.end(), m.end(3) > m.start(3))
            else:
                self.state = MARKUP
                return True
            if self.state != DATA:
                return True

    def _safe_image_end(self, images: SafeImages, i: int) -> int:
        """Where the image tag at ``i`` ends if ``images.pattern`` jumps over it (never one holding
        an event handler or ping), else 0."""
        low = self.low
        gt = low.find(b">", i, i + IMAGE_TAG_LIMIT)
        key = bytes(low[i : gt + 1]) if gt >= 0 else b""
        jump = images.jumps.get(key)
        if jump is not None:
            images.known += 1
            return gt + 1 if jump else 0
        images.missed += 1
        m = images.pattern.match(low, i)
        end = m.end() if m is not None else 0
        # The verdict on the bytes up to the first ">" alone, not on what follows them: a tag whose
        # quoted value holds a ">" is matched again next time.
        if key and self.scripting and (m is None or end == gt + 1):
            images.size += len(key) + IMAGE_VERDICT_ENTRY
            if images.size > IMAGE_VERDICT_BYTES:
                images.jumps.clear()
                images.size = len(key) + IMAGE_VERDICT_ENTRY
            images.jumps[key] = end > 0
        return end

    def _markup(self, final: bool) -> bool:
        """Tag open, end tag open and markup declaration open states: what follows a "<"."""
        low, start = self.low, self.tag_start
        n = len(low)
        if start + 1 >= n:
            return self._wait_or_text(final)
        c = low[start + 1]
        if c == 33:  # "!"
            rest = bytes(low[start + 2 : start + 9])
            if rest[:2] == b"--":
                self.state, self.pos = COMMENT, start + 4
                return True
            if len(rest) < 7 and not final and (b"--".startswith(rest[:2]) or b"doctype".startswith(rest) or b"[cdata[".startswith(rest)):
                return False
            if rest == b"doctype":
                self.document = True
            elif self.buf[start + 2 : start + 9] == b"[CDATA[" and self._in_foreign():
                if self.in_cdata and not self.held:
                    # The section runs to the end of this stream's text, which it leaves as text; read
                    # as HTML it is a bogus comment and markup after it: read on here so (no stream
                    # inside a stream inside a stream..., one a section: 400 of them raised RecursionError).
                    while self.foreign:
                        self._pop()
                else:
                    self.state, self.pos, self.code_section, self.code_cut = CDATA, start + 9, self.held, -1
                    return True
            self.state, self.pos = BOGUS, start + 2
            return True
        if c == 47:  # "/"
            if start + 2 >= n:
                return self._wait_or_text(final)
            c = low[start + 2]
            if 97 <= c <= 122:
                return self._tag_open(start + 2, end_tag=True)
            if c == 62:  # "</>": nothing
                self.state, self.pos = DATA, start + 3
                return True
            self.state, self.pos = BOGUS, start + 2
            return True
        if c == 63:  # "?": a processing instruction is a bogus comment in HTML
            self.state, self.pos = BOGUS, start + 1
            return True
        if 97 <= c <= 122:
            return self._tag_open(start + 1, end_tag=False)
        self.state, self.pos = DATA, start + 1  # a "<" that is text
        return True

    def _wait_or_text(self, final: bool) -> bool:
        if not final:
            return False
        self.state, self.pos = DATA, len(self.low)
        return True

    def _tag_open(self, name_start: int, end_tag: bool) -> bool:
        self.state, self.pos = TAG, name_start
        self.end_tag = end_tag
        self.name_end = -1
        self.tag_state = BEFORE_NAME
        return True

    def _tag(self, final: bool) -> bool:
        """Tag name state, then the attribute states until ">"."""
        low = self.low
        n = len(low)
        if self.name_end < 0:
            e = TAG_NAME.match(low, self.pos).end()
            if e >= n and not final:
                self.pos = e
                return False
            self.name_end = self.pos = e
            m = TAG_REST.match(low, e)
            if m is not None:
                return self._tag_complete(m.end(), bool(m.group(1)))
        gt = self._attributes(final)
        if gt < 0:
            if final:  # EOF in a tag: the tokenizer drops it, nothing loads
                self.state, self.pos = DATA, n
                return True
            return False
        tag = TAG_REST.match(low, self.name_end, gt + 1)
        return self._tag_complete(gt + 1, tag is not None and bool(tag.group(1)))

    def _attributes(self, final: bool) -> int:
        """Before/after attribute name, attribute name, before attribute value and the three
        attribute value states, resumed where the last chunk ended; the ">" that ends the tag, or -1."""
        low, i, st = self.low, self.pos, self.tag_state
        n = len(low)
        while i < n:
            if st == BEFORE_NAME:  # also after attribute value (quoted) and self-closing start tag
                i = SEPARATORS.match(low, i).end()
                if i >= n:
                    break
                if low[i] == 62:
                    self.pos = i
                    return i
                st, i = IN_NAME, i + 1  # any other byte, "=" included, starts a name
            elif st == IN_NAME:
                i = NAME_CHARS.match(low, i).end()
                if i >= n:
                    break
                c = low[i]
                st = BEFORE_NAME if c == 47 else BEFORE_VALUE if c == 61 else AFTER_NAME if c != 62 else st
                if c == 62:
                    self.pos = i
                    return i
                i += 1
            elif st == AFTER_NAME:
                i = SPACES.match(low, i).end()
                if i >= n:
                    break
                c = low[i]
                if c == 62:
                    self.pos = i
                    return i
                st = BEFORE_NAME if c == 47 else BEFORE_VALUE if c == 61 else IN_NAME
                i += 1
            elif st == BEFORE_VALUE:
                i = SPACES.match(low, i).end()
                if i >= n:
                    break
                c = low[i]
                if c == 62:
                    self.pos = i
                    return i
                st = DOUBLE_QUOTED if c == 34 else SINGLE_QUOTED if c == 39 else UNQUOTED
                if st != UNQUOTED:
                    i += 1
            elif st == DOUBLE_QUOTED or st == SINGLE_QUOTED:
                q = low.find(b'"' if st == DOUBLE_QUOTED else b"'", i)
                if q < 0:
                    i = n
                    break
                st, i = BEFORE_NAME, q + 1
            else:  # UNQUOTED
                i = UNQUOTED_CHARS.match(low, i).end()
                if i >= n:
                    break
                if low[i] == 62:
                    self.pos = i
                    return i
                st, i = BEFORE_NAME, i + 1
        self.pos, self.tag_state = n, st
        return -1

    def _comment(self, final: bool) -> bool:
        """Comment start, comment start dash, comment, comment end dash/end/end bang: a comment
        ends at "-->" or "--!>", or at once as "<!-->" or "<!--->"."""
        low, i = self.low, self.pos
        n = len(low)
        if i == self.tag_start + 4:  # right after "<!--"
            if n - i < 2 and not final:
                return False
            if low.startswith(b">", i):
                return self._to_data(i + 1)
            if low.startswith(b"->", i):
                return self._to_data(i + 2)
        m = COMMENT_END.search(low, i)
        if m is not None:
            return self._to_data(m.end())
        self.pos = n if final else max(i, n - 3)
        return final and self._to_data(n)

    def _bogus(self, final: bool) -> bool:
        """Bogus comment (also DOCTYPE, whose every state ends at ">"): up to the next ">"."""
        gt = self.low.find(b">", self.pos)
        if gt >= 0:
            return self._to_data(gt + 1)
        self.pos = len(self.low)
        return final and self._to_data(self.pos)

    def _cdata(self, final: bool) -> bool:
        """CDATA section state (foreign content only): up to "]]>". Where the tree builder was left
        in ways not followed here (an end tag it ignores inside an integration point, the newest
        standard's </p> and </br>), the browser is in HTML content and reads "<![CDATA[" as a bogus
        comment up to the first ">", then markup. So the section's text after that ">" also goes
        through a stream of its own that reads it as HTML: a tracker there is made inert, the
        text of a real section at worst gets an attribute renamed."""
        low, start = self.low, self.pos
        n = len(low)
        end = low.find(b"]]>", start)
        upto = end if end >= 0 else n if final else max(start, n - 2)
        if self.code_section:
            # An SVG script's code: judged whole, at its </script> (its first ">" is no end). Read as
            # HTML, the script is an HTML one: its code ends at a "</script", markup follows; then the
            # script is judged on the whole section (it may run on past that "</script").
            if self.code_cut < 0:
                self.code_cut = low.find(b"</script", start, upto if end >= 0 or final else n)
            if self.in_cdata and self.code_cut >= 0:
                # No "]]>" ends this section before this stream's text does: judged up to the "</script".
                if self.held:
                    self._classify_inline(self.code_cut)
                while self.foreign:
                    self._pop()
                self.code_section, start, self.code_cut = False, self.code_cut, -1
                return self._to_data(start)
            self.pos = upto if end >= 0 or final else max(start, n - 7)
            if self.held and (self.pos - self.code_start >= self.rw.inline_limit or (self.code_cut >= 0 and (end >= 0 or final))):
                self._classify_inline(self.pos)
            if self.held or self.code_cut < 0:
                if end < 0 and not final:
                    return False
                self.code_section = False
                return self._to_data(end + 3 if end >= 0 else n)
            self.code_section, start, self.code_cut = False, self.code_cut, -1
            self.cdata = RewriteStream(self.rw, self.allowed, b"", b"", self.page, in_cdata=True)
        elif self.cdata is None and upto > start and (gt := low.find(b">", start, upto)) >= 0:
            self.cdata = RewriteStream(self.rw, self.allowed, b"", b"", self.page, in_cdata=True)
            start = gt + 1
        if self.cdata is not None and upto > start:
            self._emit_to(start)
            self.out.append(self.cdata.feed(bytes(self.buf[start:upto])))
            self.out_pos = upto
        self.pos = max(start, upto)
        if end < 0 and not final:
            return False
        if self.cdata is not None:
            self._emit_to(self.pos)
            self.out.append(self.cdata.close())
            self.cdata = None
        return self._to_data(end + 3 if end >= 0 else n)

    def _plaintext(self, final: bool) -> bool:
        """PLAINTEXT state: the rest of the document is text."""
        self.pos = len(self.low)
        return False

    def _raw(self, final: bool) -> bool:
        """RCDATA and RAWTEXT states: text up to the appropriate end tag."""
        end = self._find_end(raw_end(self.raw_name), len(self.raw_name) + 2, final)
        return end >= 0 and self._end_tag_at(end, self.raw_name)

    def _noscript(self, final: bool) -> bool:
        """<noscript> as RAWTEXT (a browser with scripting on); what is inside goes through a
        stream that reads it as a browser without scripting does, which loads its images."""
        start = self.pos
        end = self._find_end(raw_end(b"noscript"), len(b"noscript") + 2, final)
        if self.noscript is None and end >= 0:
            self._noscript_whole(start, end)
            return self._end_tag_at(end, b"noscript")
        upto = end if end >= 0 else self.pos
        if self.noscript is None and upto > start and (lt := self.low.find(b"<", start, upto)) >= 0:
            # Text alone loads nothing: the stream starts at the first tag, if one ever comes.
            self.noscript = RewriteStream(self.rw, self.allowed, b"", b"", self.page, scripting=False, in_cdata=self.in_cdata)
            start = lt
        if self.noscript is not None and upto > start:
            self._emit_to(start)
            self.out.append(self.noscript.feed(bytes(self.buf[start:upto])))
            self.out_pos = upto
        if end < 0:
            return False
        if self.noscript is not None:
            self.out.append(self.noscript.close())
            self.noscript = None
        return self._end_tag_at(end, b"noscript")

    def _noscript_whole(self, start: int, end: int) -> None:
        """A <noscript>'s content seen whole, read as a browser without scripting reads it. Text
        alone loads nothing; the same content on every page of a site comes out the same."""
        lt = self.low.find(b"<", start, end)
        if lt < 0:
            return
        content = bytes(self.buf[lt:end])
        key = (content, self.allowed, self.page[0] if self.page is not None else None, self.in_cdata)
        done = self.rw.noscripts.get(key)
        if done is None:
            stream = RewriteStream(self.rw, self.allowed, b"", b"", self.page, scripting=False, in_cdata=self.in_cdata)
            done = stream.feed(content) + stream.close()
            if len(content) <= 4096 and len(self.rw.noscripts) < 1024:
                self.rw.noscripts[key] = done
        if done != content:
            self._replace(lt, end, done)

    def _script_data(self, final: bool) -> bool:
        """Script data, with its less-than sign, end tag and escape start states."""
        m = self._search(SCRIPT_DATA, final)
        if m is None:
            return False
        if m.group() == b"<!--":
            self.state, self.pos = SCRIPT_ESC, m.start() + 2  # "<!-->" ends the escape at once
            return True
        return self._script_end(m.start())

    def _script_escaped(self, final: bool) -> bool:
        """Script data escaped (and its dash, less-than sign, end tag and double escape start states)."""
        m = self._search(SCRIPT_ESCAPED, final)
        if m is None:
            return False
        token = m.group()
        if token == b"-->":
            self.state, self.pos = SCRIPT, m.end()
            return True
        if token[1] == 47:  # "</script"
            return self._script_end(m.start())
        self.state, self.pos = SCRIPT_DESC, m.end() - 1
        return True

    def _script_double_escaped(self, final: bool) -> bool:
        """Script data double escaped (and its dash, less-than sign and double escape end states)."""
        m = self._search(SCRIPT_DOUBLE_ESCAPED, final)
        if m is None:
            return False
        if m.group() == b"-->":
            self.state, self.pos = SCRIPT, m.end()
        else:
            self.state, self.pos = SCRIPT_ESC, m.end() - 1
        return True

    def _search(self, pattern: re.Pattern[bytes], final: bool) -> re.Match[bytes] | None:
        """The next of a script state's tokens (at most 9 bytes long), or None having moved on
        to where a token cut by the chunk's end could begin."""
        n = len(self.low)
        m = pattern.search(self.low, self.pos)
        if m is None:
            self.pos = n if final else max(self.pos, n - 8)
            if self.held and (final or self.pos - self.code_start >= self.rw.inline_limit):
                self._classify_inline(self.pos)
        return m

    def _script_end(self, end: int) -> bool:
        if self.held:
            self._classify_inline(end)
        return self._end_tag_at(end, b"script")

    def _find_end(self, pattern: re.Pattern[bytes], longest: int, final: bool) -> int:
        n = len(self.low)
        m = pattern.search(self.low, self.pos)
        if m is not None:
            return m.start()
        self.pos = n if final else max(self.pos, n - longest)
        return -1

    def _end_tag_at(self, i: int, name: bytes) -> bool:
        """The end tag that closes raw text or a script, read as a tag (it may have attributes).
        Outside foreign content, one of just its name and ">" only returns to the data state."""
        gt = i + 2 + len(name)
        if self.low[gt] == 62 and not self.foreign:
            return self._to_data(gt + 1)
        self.tag_start = i
        return self._tag_open(i + 2, end_tag=True)

    def _to_data(self, i: int) -> bool:
        self.state, self.pos = DATA, i
        return True

    # -- the tree builder, as far as it switches the tokenizer's state ---------------------------

    def _push(self, ns: bytes, name: bytes) -> None:
        self.foreign.append((ns, name))
        self.open_names[name] = self.open_names.get(name, 0) + 1

    def _pop(self) -> bytes:
        name = self.foreign.pop()[1]
        self.open_names[name] -= 1
        return name

    def _in_foreign(self) -> bool:
        return bool(self.foreign) and self.foreign[-1] not in INTEGRATION_POINTS

    def _tag_complete(self, end: int, self_closing: bool) -> bool:
        start, name_end = self.tag_start, self.name_end
        name = bytes(self.low[start + (2 if self.end_tag else 1) : name_end])
        self.state, self.pos = DATA, end
        if self.end_tag:
            self._end_tag(name)
            return True
        if (self.scripting and HANDLER_OR_PING.search(self.low, name_end, end) is not None) or (
            name in LOADING_ATTRIBUTES and any(self.low.find(a, name_end, end) >= 0 for a in LOADING_ATTRIBUTES[name])
        ):
            end = self.pos = self._hold_attributes(name, start, name_end, end)
        if self._in_foreign():
            if name in BREAKOUT or (name == b"font" and self._font_breaks_out(start, name_end, end)):
                while self._in_foreign():
                    self._pop()
            else:
                return self._foreign_start(name, start, name_end, end, self_closing)
        elif name in MATH_IN_TEXT and self.foreign and self.foreign[-1] in MATH_TEXT_POINTS:
            return self._foreign_start(name, start, name_end, end, self_closing)
        if name == b"svg" or name == b"math":
            if not self_closing:
                self._push(name, name)
            return True
        if name == b"script":
            self._script_start(start, name_end, end)
            self.state = SCRIPT
            return True
        if name in RAW_TEXT:
            if name == b"iframe":
                self._element(IFRAME, start, name_end, end)
            self.state, self.raw_name = RAW, name
            return True
        if name in ELEMENT_KINDS:
            self._element(ELEMENT_KINDS[name], start, name_end, end)
            return True
        if name == b"noscript":
            if self.scripting:
                self.state = NOSCRIPT
            return True
        if name == b"plaintext":
            self.state = PLAINTEXT
            return True
        self._structure(name, start, end)
        return True

    def _hold_attributes(self, name: bytes, start: int, name_end: int, end: int) -> int:
        """Renames the event handlers, ping and LOADING_ATTRIBUTES of a start tag that name a
        tracker of a refused category, in the buffer, before the tag is judged as its element;
        returns the tag's new end."""
        tag = bytes(self.buf[start:end])
        attrs = parse_attrs(tag, name_end - start, end - start - 1)
        rename: dict[bytes, bytes] = {}
        loading = LOADING_ATTRIBUTES.get(name, ())
        for attr in attrs.values():
            if not attr.value or attr.name in rename:
                continue
            if attr.name in loading:
                value = url_of(attr.value)
                if attr.name == b"srcdoc":
                    found = self.rw.trackers.match_inline(value.lower(), self.page, "iframe srcdoc")
                else:
                    found = self.address_trackers(value)
                    if not found and self.page is not None and name in EMBEDDING:  # an image or a video is no cause
                        self.rw.trackers.report_left_live(value.lower().strip(b"\t\n\f\r "), *self.page, name.decode("latin-1"))
            elif not self.scripting:
                continue
            elif attr.name.startswith(b"on") and len(attr.name) > 2:
                found = self.rw.trackers.match_inline(url_of(attr.value).lower(), self.page, "event handler")
            elif attr.name == b"ping" and name in PING_ELEMENTS:
                found = ()
                for url in url_of(attr.value).split():
                    found += self.address_trackers(url)
            else:
                continue
            if found and not self.allowed.issuperset(self.rw.trackers.categories(found)):
                rename[attr.name] = b"data-consentmw-" + attr.name
        if not rename:
            return end
        new = edit_tag(tag, attrs, rename, set(rename.values()), [])
        self.buf[start:end] = new
        self.low[start:end] = new.lower()
        return start + len(new)

    def address_trackers(self, url: bytes) -> tuple[Tracker, ...]:
        """Trackers an address (as written, character references decoded) loads: by its host, or
        by the code or document a javascript: or data: URL holds."""
        found = self.rw.trackers.match_src(url.lower().strip(b"\t\n\f\r "))
        if not found and (content := code_in_url(url)) is not None:
            found = self.rw.trackers.match_inline(content, self.page, "javascript: or data: URL")
        return found

    def code_url_trackers(self, tag: bytes, name_end: int, name: bytes) -> tuple[Tracker, ...]:
        """address_trackers of a javascript: or data: URL in the tag's `name` attribute, read in its
        own case (base64 is)."""
        attr = parse_attrs(tag, name_end, len(tag) - 1).get(name)
        return self.address_trackers(url_of(attr.value or b"")) if attr is not None else ()

    def _font_breaks_out(self, start: int, name_end: int, end: int) -> bool:
        """A <font> leaves foreign content when it has a color, face or size attribute: names read
        as the tokenizer reads them (`<font title="a"color=1>` has one; `<font title=" color=1">` not)."""
        attrs = parse_attrs(bytes(self.low[start:end]), name_end - start, end - start - 1)
        return any(a.name in FONT_BREAKOUT for a in attrs.values())

    def _foreign_start(self, name: bytes, start: int, name_end: int, end: int, self_closing: bool) -> bool:
        ns = self.foreign[-1][0]
        if name in ELEMENT_KINDS:
            # Nothing an SVG or MathML <iframe> or <img> loads; but where the tree builder would
            # have left foreign content in ways not followed here (an end tag it ignores), the
            # browser reads an HTML element: judged as one, it is never missed.
            self._element(ELEMENT_KINDS[name], start, name_end, end)
        if name == b"script":
            # In SVG it runs its code (read as markup, up to </script>) or loads its href. In
            # MathML it never runs, but reading it as SVG's costs nothing and keeps older parsers' view.
            self._script_start(start, name_end, end)
            if self_closing and self.held:
                self._classify_inline(end)
        if not self_closing:
            if ns == b"math" and name == b"annotation-xml":
                # The value as written, case aside: "text/html " (a space) makes no integration point.
                encoding = parse_attrs(bytes(self.buf[start:end]), name_end - start, end - start - 1).get(b"encoding")
                if encoding is not None and url_of(encoding.value or b"").lower() in HTML_ENCODINGS:
                    ns = b"math-html"  # an HTML integration point
            elif name == b"svg" and self.foreign[-1] == (b"math", b"annotation-xml"):
                ns = b"svg"
            self._push(ns, name)
        return True

    def _end_tag(self, name: bytes) -> None:
        if self.held and name == b"script":  # an SVG script's code ends here
            self._classify_inline(self.tag_start)
        if self.foreign:
            if self.open_names.get(name):
                while self._pop() != name:
                    pass
                return
            # The standard now has </p> and </br> leave foreign content; parsers from before that
            # (html5lib, older browsers) stay in it, and read more markup there: so does this one.
            return
        if name == b"head" or name == b"body":
            self._structure(b"/" + name, self.tag_start, self.pos)

    def _structure(self, name: bytes, start: int, end: int) -> None:
        """<html>, <head>, <body>, </head>, </body>: where the head and body-end markup go."""
        if name not in (b"html", b"head", b"body", b"/head", b"/body") or not self.scripting:
            return
        self.document = True
        if name == b"head" and not self.head_done:
            self._insert(end, self.head)
            self.head_done = True
        elif name != b"html":
            if not self.head_done:
                self._insert(start, self.head)
                self.head_done = True

    def _before_tag_that_matters(self, start: int) -> None:
        # A document that leaves out <head>: what goes first in it goes before its first tracker-ish tag.
        if not self.head_done and self.document:
            self._insert(start, self.head)
            self.head_done = True

    # -- what the rewriter decides -------------------------------------------------------------

    def _script_start(self, start: int, name_end: int, end: int) -> None:
        if self.held:  # an SVG script's code cut short by a tag that left SVG
            self._classify_inline(start)
        self._before_tag_that_matters(start)
        tag, low = bytes(self.buf[start:end]), bytes(self.low[start:end])
        found = self._script_tag(tag, low, name_end - start)
        if found is None:
            self.held, self.held_start, self.code_start = True, start, end  # wait for the code
        elif found is not True:
            self._replace(start, end, found)

    def _classify_inline(self, code_end: int) -> None:
        self.held = False
        start, end = self.held_start, self.code_start
        code = bytes(self.low[end : min(code_end, end + self.rw.inline_limit)])
        tag, low = bytes(self.buf[start:end]), bytes(self.low[start:end])
        found = self.rw.trackers.match_inline(code, self.page)
        if not found and low.find(SPECULATION_RULES) >= 0:
            # A rule set prefetches or prerenders the addresses (and patterns) it lists.
            for host in RULE_HOST.findall(code):
                found += self.rw.trackers.candidates(host)
        if found:
            name_end = TAG_NAME.match(low, 1).end()
            replacement = self._rewrite_known(SCRIPT_KIND, tag, name_end, self.rw.trackers.categories(found))
            if replacement is not True:
                self._replace(start, end, replacement)

    def _script_tag(self, tag: bytes, low: bytes, name_end: int) -> bytes | bool | None:
        """The <script> start tag to write, True to keep it as it is, None to look at its code."""
        gt = len(tag) - 1
        if low.find(b"data-", name_end) >= 0 or low.find(b"optanon", name_end) >= 0:
            attrs = parse_attrs(tag, name_end, gt)
            script_type = type_of(attrs.get(b"type"))
            cats = self.rw.marked_categories(SCRIPT_KIND, attrs, script_type)
            if cats is not None:
                return self._rewrite(SCRIPT_KIND, tag, attrs, cats, script_type)
        # The same script tags come on every page of a site: what they need is remembered.
        key = (tag, self.page[0] if self.page is not None else None)
        cats = self.rw.script_tags.get(key, False)
        if cats is False:
            cats = self._script_categories(tag, low, name_end, gt)
            if len(tag) <= 4096 and len(self.rw.script_tags) < 4096:
                self.rw.script_tags[key] = cats
        if cats is None:
            return None
        return self._rewrite_known(SCRIPT_KIND, tag, name_end, cats) if cats else True

    def _script_categories(self, tag: bytes, low: bytes, name_end: int, gt: int) -> tuple[str, ...] | None:
        """The categories a script tag's src needs (none for the site's own), None to look at its code."""
        # Only src and type matter, read without parsing every attribute.
        values = first_values(tag, low, name_end, gt, SRC_AND_TYPE)
        src = values.get(b"src", values.get(b"href", values.get(b"xlink:href")))
        script_type = values[b"type"].split(b";")[0].strip() if b"type" in values else None
        if (script_type or b"") not in JS_TYPES and script_type != IMPORTMAP and script_type != SPECULATION_RULES:
            return ()
        if src is None:
            return None
        found = self.rw.trackers.match_src(src)
        if not found and is_code_url(src):
            found = self.code_url_trackers(tag, name_end, b"src")
        if not found and self.page is not None:
            self.rw.trackers.report_left_live(src, *self.page, "script")
        return self.rw.trackers.categories(found)

    def _element(self, kind: int, start: int, name_end: int, end: int) -> None:
        if (kind == IMG or kind == LINK) and self._not_tracker(kind, start, name_end, end):
            return
        tag, low = bytes(self.buf[start:end]), bytes(self.low[start:end])
        name_end -= start
        gt = len(tag) - 1
        if kind == LINK or (low.find(b"data-", name_end) < 0 and low.find(b"optanon", name_end) < 0):
            values = first_values(tag, low, name_end, gt, LINK_ADDRESSES if kind == LINK else SRC_AND_SRCSET)
            address = values.get(b"href" if kind == LINK else b"src")
            found = self.rw.trackers.match_src(address) if address is not None else ()
            if not found and kind == IFRAME and address is not None and is_code_url(address):
                found = self.code_url_trackers(tag, name_end, b"src")
            srcset = values.get(b"imagesrcset" if kind == LINK else b"srcset")
            if srcset is not None:
                found += self.srcset_trackers(srcset)
            if kind == LINK and not found and address is not None and (host := url_host(address)) is not None:
                # preconnect to a tracker's host: it serves every purpose its trackers have.
                found = self.rw.trackers.candidates(host)
            if not found and self.page is not None:
                if kind == IFRAME and address is not None:
                    self.rw.trackers.report_left_live(address, *self.page, "iframe")
                elif kind == IMG and is_pixel(low, name_end, gt + 1):
                    # A browser loads one of a srcset's candidates, by its own rules: any may be the pixel's.
                    for url in ([address] if address is not None else []) + (srcset_urls(srcset) if srcset is not None else []):
                        self.rw.trackers.report_left_live(url, *self.page, "pixel")
            done = self._rewrite_known(kind, tag, name_end, self.rw.trackers.categories(found)) if found else True
        else:
            attrs = parse_attrs(tag, name_end, gt)
            cats = self.rw.marked_categories(kind, attrs, None)
            if cats is None and ((src := attrs.get(b"src")) is not None or b"srcset" in attrs):
                found = self.rw.trackers.match_src(url_of(src.value or b"").lower()) if src is not None else ()
                if not found and kind == IFRAME and src is not None:
                    found = self.address_trackers(url_of(src.value or b""))
                if (srcset_attr := attrs.get(b"srcset")) is not None:
                    found += self.srcset_trackers(url_of(srcset_attr.value or b"").lower())
                cats = self.rw.trackers.categories(found) if found else None
            done = self._rewrite(kind, tag, attrs, cats, None)
        if done is not True:
            # Head before the first tag it changes, whichever way a tag left as it is was passed
            # over (the image jump, _not_tracker or this closer look: the chunks' ends decide).
            self._before_tag_that_matters(start)
            self._replace(start, end, done)

    def _not_tracker(self, kind: int, tag_start: int, start: int, end: int) -> bool:
        """Whether an image or link tag (``self.low[tag_start:end]``, its attributes from ``start``)
        surely loads no tracker. Most are the site's own: they are ruled out by their hosts, without
        parsing the tag or copying it."""
        low = self.low
        if low.find(b"@", start, end) >= 0:
            return False  # user info ("site.example:x@tracker/"): the host is not the first name in the URL
        if kind == LINK:
            # Only resource hints (preload, prefetch, preconnect) reach out before any consent.
            if low.find(b"pre", start, end) < 0 and low.find(b"&", start, end) < 0:  # rel="p&#114;eload"
                return True
            if low.find(b"imagesrcset", start, end) >= 0:
                return False
            hosts = HREF_HOSTS.findall(low, start, end)
        else:
            if low.find(b"data-", start, end) >= 0 or low.find(b"optanon", start, end) >= 0:
                return False  # maybe another consent tool's marking
            hosts = SRC_HOSTS.findall(low, start, end)  # src and srcset
            if low.find(b",", start, end) >= 0:
                hosts += SRCSET_HOSTS.findall(low, start, end)
        trackers = self.rw.trackers
        if trackers.ungated_src and (low.find(b"src", start, end) >= 0 or low.find(b"href", start, end) >= 0):
            return False
        # The hosts this site's images come from were ruled out on an earlier tag.
        safe = self.safe_hosts
        site = self.page[0] if self.page is not None else None
        unsure = [host for host in hosts if host not in safe]
        loud = False  # an unknown third party's host among them, whose pixels are to be named
        if unsure:
            known = trackers._by_host
            for host in unsure:
                # An odd host always gets the closer look, whatever an earlier page left in the
                # cache under it ("www.facebook&" of "www.facebook&#46;com", cut at its "#").
                if ODD_HOST.search(host):
                    return False
                found = known.get(host)
                if found is None:
                    found = trackers.candidates(host)
                if found:
                    return False
            for host in unsure:
                # An unknown third party's host is remembered as one to name a pixel from.
                quiet = site is None or not trackers.maybe_left_live(host, site)
                loud |= not quiet
                if len(safe) < 4096:
                    safe[host] = quiet
        if kind == IMG and (loud or any(safe.get(host) is False for host in hosts)) and is_pixel(low, start, end):
            return False  # a pixel from an unknown host: reported by the closer look
        return True

    def srcset_trackers(self, srcset: bytes) -> tuple[Tracker, ...]:
        found: tuple[Tracker, ...] = ()
        for url in srcset_urls(srcset):
            found += self.rw.trackers.match_src(url)
        return found

    def _rewrite_known(self, kind: int, tag: bytes, name_end: int, cats: tuple[str, ...]) -> bytes | bool:
        # The same tracker tags come on every page: their rewritten form is remembered.
        key = (tag, cats, self.allowed.issuperset(cats))
        done = self.rw.rewritten.get(key)
        if done is None:
            attrs = parse_attrs(tag, name_end, len(tag) - 1)
            done = self._rewrite(kind, tag, attrs, cats, type_of(attrs.get(b"type")) if kind == SCRIPT_KIND else None)
            if len(tag) <= 4096 and len(self.rw.rewritten) < 4096:
                self.rw.rewritten[key] = done
        return done

    def _rewrite(self, kind: int, tag: bytes, attrs: dict[bytes, Attr], cats: tuple[str, ...] | None, script_type: bytes | None) -> bytes | bool:
        if cats is None:
            return True
        live = self.allowed.issuperset(cats)
        rename: dict[bytes, bytes] = {}
        drop: set[bytes] = set()
        add: list[tuple[bytes, bytes]] = []
        held = next((attrs[a].value for a in HELD_SRC if a in attrs and attrs[a].value), None)
        if live:
            # Allowed, but held inert by markup: switch it on here rather than wait for the banner.
            if kind == SCRIPT_KIND and script_type == INERT:
                drop.add(b"type")
                real = attrs.get(b"data-consentmw-type") or attrs.get(b"data-type")
                if real is not None and real.value and real.value.lower() != INERT:
                    add.append((b"type", real.value))
            if b"src" not in attrs and held is not None and (kind != SCRIPT_KIND or script_type == INERT):
                add.append((b"src", held))
            if not drop and not add:
                return True
        elif kind == LINK:
            # A resource hint: nothing to bring back later, the tracker's own tag loads it then.
            for name in (b"href", b"imagesrcset"):
                if name in attrs:
                    rename[name] = b"data-consentmw-" + name
                    drop.add(b"data-consentmw-" + name)
            add.append((b"data-consentmw-category", " ".join(cats).encode()))
        else:
            if b"srcset" in attrs and kind != SCRIPT_KIND:
                rename[b"srcset"] = b"data-consentmw-srcset"
                drop.add(b"data-consentmw-srcset")
            if b"src" in attrs:
                rename[b"src"] = b"data-consentmw-src"
                drop.add(b"data-consentmw-src")
            elif held is not None and b"data-consentmw-src" not in attrs:
                add.append((b"data-consentmw-src", held))
            if kind == SCRIPT_KIND:
                # An SVG script loads its href, and the preload scanner fetches it whatever its type.
                for name in (b"href", b"xlink:href"):
                    if name in attrs:
                        rename[name] = b"data-consentmw-" + name.replace(b":", b"-")
                        drop.add(rename[name])
            if kind == SCRIPT_KIND and script_type != INERT:
                if b"type" in attrs:
                    rename[b"type"] = b"data-consentmw-type"
                    drop.add(b"data-consentmw-type")
                add.append((b"type", INERT))
            elif kind == SCRIPT_KIND and b"data-consentmw-type" not in attrs and (real := attrs.get(b"data-type")) is not None and real.value:
                add.append((b"data-consentmw-type", real.value))
            if b"data-consentmw-category" not in attrs:
                add.append((b"data-consentmw-category", " ".join(cats).encode()))
        return edit_tag(tag, attrs, rename, drop, add)


def edit_tag(tag: bytes, attrs: dict[bytes, Attr], rename: dict[bytes, bytes], drop: set[bytes], add: list[tuple[bytes, bytes]]) -> bytes:
    """The start tag with attributes renamed, dropped and added; the rest as written."""
    pieces: list[bytes] = []
    cursor = 0
    for attr in sorted(attrs.values(), key=lambda a: a.start):
        if attr.name in rename and attr.name not in drop:
            pieces += [tag[cursor : attr.start], rename[attr.name]]
            cursor = attr.name_end
        elif attr.name in drop:
            pieces.append(tag[cursor : attr.start].rstrip())
            cursor = attr.end
    tag_end = len(tag)
    close_at = tag_end - 2 if tag.endswith(b"/>") and not (attrs and max(a.end for a in attrs.values()) == tag_end - 1) else tag_end - 1
    pieces.append(tag[cursor:close_at].rstrip())
    for name, value in add:
        pieces += [b" ", name, b"=", quoted(value)]
    pieces.append(tag[close_at:tag_end])
    return b"".join(pieces)


def is_code_url(url: bytes) -> bool:
    return CODE_URL.match(URL_TABS.sub(b"", url)) is not None


def code_in_url(url: bytes) -> bytes | None:
    """What a javascript: URL runs or a data: URL holds (a script, a document with scripts), as
    the URL parser and the data: URL processor read it; None for any other address."""
    url = URL_TABS.sub(b"", url)  # the URL parser drops tabs and newlines anywhere
    m = CODE_URL.match(url)
    if m is None:
        return None
    rest = url[m.end() :]
    if m.group(1).lower() == b"data":
        header, _, rest = rest.partition(b",")
        if header.lower().rstrip(b" ").endswith(b";base64"):
            try:
                return base64.b64decode(re.sub(rb"[\t\n\f\r ]", b"", unquote_to_bytes(rest)) + b"==").lower()
            except ValueError:
                return b""
    return unquote_to_bytes(rest).lower()


def srcset_urls(srcset: bytes) -> list[bytes]:
    """The candidates' URLs of a srcset, as the HTML spec splits it: a URL runs to whitespace (a
    trailing comma ends the candidate), its descriptors to the next comma."""
    urls = []
    i, n = 0, len(srcset)
    while i < n:
        while i < n and srcset[i] in b" \t\n\r\f,":
            i += 1
        j = i
        while j < n and srcset[j] not in b" \t\n\r\f":
            j += 1
        if j > i:
            url = srcset[i:j]
            urls.append(url.rstrip(b","))
            if url[-1:] != b",":
                comma = srcset.find(b",", j)
                j = n if comma < 0 else comma + 1
        i = j
    return urls

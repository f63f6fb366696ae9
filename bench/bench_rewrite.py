"""Cost of the streaming HTML rewriter, as ratios measured in the same run.

Speed, on two pages: the 50 KB shop page with 5 trackers (GA4, GTM, Meta pixel, Naver Analytics,
Kakao Pixel) and a dense 300 KB page (the size of the hidden corpus page: every vendor snippet of
tests/corpus, 14, and product cards, each an image, to 300 KB). Against one
`re.finditer(b"<script", body)` scan of the same body, measured in the same rounds.

What a site pays is the headline: one rewriter living as long as the process (as the middleware
keeps it), fed pages it has not seen (each run takes the next of 64 distinct pages: other tracker ids,
other product numbers; each case has its own turn through them, so that a page comes back only when
the rewriter has long forgotten its image tags), with the page's host given as a server gives it. The same pages again as
another domain's: their images then come from a host the site does not own and no catalog knows,
as from a CDN on a domain of its own (a common case). Beside them: warm (the same page again and
again) and a new rewriter per page (empty caches). Visitors: undecided (every tracker made inert;
target at most 30x the scan, with either host) and one who allowed everything (the insertions
alone; target at most 2.5x). Rounds alternate between the cases; each figure is the fastest round
(time.perf_counter per run), the least disturbed by the rest of the machine, whose load average is
printed beside the figures.

The ratios depend on the Python that runs them, not only on the rewriter. The scan is one tight loop
in C, which Debian's python3 (linked statically, with link-time and profile-guided optimisation)
runs about a third faster than pyenv's default build (a shared libpython, neither), while the
rewriter, mostly interpreted Python and regex matching, gains about a tenth. The same code so shows
higher ratios on the faster build; the interpreter is printed beside the figures.

Linear time: every input issue 14 reproduced as slow or misread, at 64 KB and 256 KB (4x; smaller
inputs take a millisecond or two, which the machine's noise swamps): the time ratio must stay under
6x and 64 KB under 0.25 s, fed whole and in 1-byte chunks where chunking was the problem.

Memory: a 20 MB page fed in 64 KB chunks, output dropped as it comes; tracemalloc's peak above
what was allocated before the first chunk. Target: under 1 MB.

    python bench/bench_rewrite.py [--runs 200] [--rounds 9]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consentmw.core.html import SKIP, HTMLRewriter  # noqa: E402
from consentmw.core.policy import load_policy  # noqa: E402
from tests.corpus.pages import SNIPPETS, page_of_size, products, shop_page  # noqa: E402

TRACKERS = ["ga4-gtag", "gtm", "meta-pixel", "naver-analytics", "kakao-pixel"]
SCRIPT = re.compile(b"<script")
CHUNK = 64 * 1024
HEAD, BODY_END = b"<!--head-->", b"<!--end-->"
SITE = (b"www.shop.example.kr", "/")  # the page's host and path, as the middleware passes them
# The same pages served as another domain's: their images (img.shop.example.kr) then come from a
# third party's host that no catalog knows, as from a CDN on a domain of its own.
CDN_SITE = (b"www.mall.example", "/")
UNDECIDED_TARGET, ALLOWED_TARGET = 30.0, 2.5


def interpreter() -> str:
    """Which Python ran the figures: the ratios depend on its build (see the module's text)."""
    return f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"


def fastest(fn: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def variants(page: str, count: int) -> list[bytes]:
    """The page with other tracker ids and product numbers: the same shape, other bytes."""
    return [
        page.replace("7QX2LCE5N1", f"{i:010d}").replace("402918374651238", f"{i:015d}").replace("1002", f"{i % 90 + 10:02d}02").encode()
        for i in range(count)
    ]


def dense_page(size: int) -> str:
    return page_of_size(size, sorted(SNIPPETS))


def speed_of(name: str, page: str, runs: int, rounds: int) -> None:
    policy = load_policy("default")
    nobody = policy.required
    everyone = frozenset(c.id for c in policy.categories)
    body = page.encode()
    pages = variants(page, 64)
    long_lived = HTMLRewriter(policy)
    warm = HTMLRewriter(policy)

    def rotating(who: frozenset[str], site: tuple[bytes, str] = SITE) -> Callable[[], object]:
        # Each case its own turn through the pages: one comes back only after all the others, when
        # the rewriter has long forgotten its image tags (it keeps a few pages' worth of them).
        turn = itertools.count()

        def run() -> object:
            return long_lived.rewrite(who, pages[next(turn) % len(pages)], head=HEAD, body_end=BODY_END, page=site)

        return run

    def new_instance(who: frozenset[str]) -> Callable[[], object]:
        fresh: list[HTMLRewriter] = []
        turn = itertools.count()

        def run() -> object:
            if not fresh:  # made outside the timed calls but one, which best-of leaves out
                fresh.extend(HTMLRewriter(policy) for _ in range(runs + 1))
            return fresh.pop().rewrite(who, pages[next(turn) % len(pages)], head=HEAD, body_end=BODY_END, page=SITE)

        return run

    def same_page(who: frozenset[str]) -> Callable[[], object]:
        return lambda: warm.rewrite(who, body, head=HEAD, body_end=BODY_END, page=SITE)

    def scan() -> None:
        for _ in SCRIPT.finditer(body):
            pass

    def floor() -> None:
        # The rewriter's own jump over text and tags that load nothing, with the lowercasing
        # (SKIP stops at tags with an event handler or ping itself: no look-ahead bounds it).
        low = body.lower()
        i = 0
        while i < len(low):
            i = SKIP.match(low, i).end() + 1

    cases: dict[str, Callable[[], object]] = {
        "scan": scan,
        "lower() + SKIP to the tags": floor,
        "undecided, long-lived, unseen pages": rotating(nobody),
        "undecided, long-lived, unseen, images from a CDN": rotating(nobody, CDN_SITE),
        "undecided, warm (same page)": same_page(nobody),
        "undecided, new rewriter per page": new_instance(nobody),
        "allowed everything, long-lived, unseen pages": rotating(everyone),
        "allowed everything, warm (same page)": same_page(everyone),
    }
    best = dict.fromkeys(cases, float("inf"))
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for case, fn in cases.items():
            best[case] = min(best[case], fastest(fn, runs))
    out = long_lived.rewrite(nobody, body, page=SITE)
    tags = body.count(b"<")
    print(f"{name}: {len(body):,} bytes, {tags:,} tags, {body.count(b'<script')} scripts, {out.count(b'data-consentmw-category=')} made inert for an undecided visitor")
    scan_t = best["scan"]
    for case, t in best.items():
        target = ""
        if case.startswith("undecided, long-lived, unseen"):
            target = f"  target <= {UNDECIDED_TARGET:g}x: {'OK' if t / scan_t <= UNDECIDED_TARGET else 'OVER'}"
        elif case == "allowed everything, long-lived, unseen pages":
            target = f"  target <= {ALLOWED_TARGET:g}x: {'OK' if t / scan_t <= ALLOWED_TARGET else 'OVER'}"
        print(f"  {case:<48} {t * 1e6:9.1f} us  {t / scan_t:6.2f}x{target}")
    print(f"  load average: {load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores; {interpreter()}")


def speed(runs: int, rounds: int) -> None:
    speed_of("50 KB shop page", page_of_size(50_000, TRACKERS), runs, rounds)
    speed_of("300 KB dense page", dense_page(300_000), max(10, runs // 6), rounds)


def memory() -> None:
    policy = load_policy("default")
    rewriter = HTMLRewriter(policy)
    page = shop_page(TRACKERS, 1)
    head, tail = page.split("</ul>", 1)
    card = products(50)
    body = (head + card * (20_000_000 // len(card.encode()) + 1) + "</ul>" + tail).encode()
    view = memoryview(body)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    stream = rewriter.stream(policy.required, head=b"<!--head-->", body_end=b"<!--end-->")
    size = 0
    for i in range(0, len(body), CHUNK):
        size += len(stream.feed(bytes(view[i : i + CHUNK])))
    size += len(stream.close())
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    print(f"page: {len(body) / 1e6:.1f} MB in {CHUNK // 1024} KB chunks, {size / 1e6:.1f} MB out")
    print(f"peak memory above start: {peak / 1024:.0f} KB (target < 1024 KB)")


PIXEL = b"https://www.facebook.com/tr?id=1"
GTAG = b'<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>'


def fill(unit: bytes, size: int) -> bytes:
    return unit * (size // len(unit) + 1)


# name -> (input of about `size` bytes, chunk size; 0 feeds it whole)
REPRODUCTIONS = {
    "gtag( reflected into an inline script": (lambda n: b"<script>" + fill(b"gtag(", n) + b"</script>", 0),
    "document.write( reflected into an inline script": (lambda n: b"<script>" + fill(b"document.write(", n) + b"</script>", 0),
    "connect.facebook.net/ reflected into an inline script": (lambda n: b"<script>" + fill(b"connect.facebook.net/", n) + b"</script>", 0),
    "gtag/js?& reflected into an inline script": (lambda n: b"<script>" + fill(b".src='//www.googletagmanager.com/gtag/js?&", n) + b"</script>", 0),
    "unterminated <img  repeated": (lambda n: fill(b"<img ", n), 0),
    "unterminated <script  repeated": (lambda n: fill(b"<script ", n), 0),
    "unterminated <link  repeated": (lambda n: fill(b"<link ", n), 0),
    "one long attribute, 1-byte chunks": (lambda n: b'<img alt="' + fill(b"x", n) + b'" src="' + PIXEL + b'">', 1),
    "one long unquoted attribute, 1-byte chunks": (lambda n: b"<img alt=" + fill(b"x", n) + b" src=" + PIXEL + b">", 1),
    "unterminated comment, 1-byte chunks": (lambda n: b"<!--" + fill(b"-", n), 1),
    "unterminated script, 1-byte chunks": (lambda n: b"<script>" + fill(b"<!--<script>", n), 1),
    "inline script, 1-byte chunks": (lambda n: b"<script>fbq('init', '1');" + fill(b"x", n) + b"</script>", 1),
    "title='<!--' then a tracker, repeated": (lambda n: fill(b'<div title="<!--"></div>' + GTAG, n), 0),
    "<?php <!-- ?> then a tracker, repeated": (lambda n: fill(b"<?php <!-- ?>" + GTAG, n), 0),
    "script double escape, repeated": (lambda n: fill(b'<script>"<!--<script>"</script> <!-- "</script>' + GTAG, n), 0),
    "<svg><style><img>, repeated": (lambda n: fill(b"<svg><style><img src=" + PIXEL + b">", n), 0),
    "'>' in a quoted alt, repeated": (lambda n: fill(b'<img alt=a" title=">" src="' + PIXEL + b'">', n), 0),
    "SVG nested deep, then end tags it does not hold": (lambda n: b"<svg>" + fill(b"<g>", n // 2) + fill(b"</x>", n // 2), 0),
    "tags in 7-byte chunks": (lambda n: fill(b'<p class="a">x</p><img src="/a.png">' + GTAG, n), 7),
    "tracker handlers renamed, page fed whole": (lambda n: fill(b"<b onclick=fbq()>", n), 0),
}
# Inputs read by the fast path's own searches (a visitor who allowed everything, rewrite() whole).
FAST_REPRODUCTIONS = {
    "allowed all, data-category then <script  repeated": lambda n: b"<li data-category=x>" + fill(b"<script ", n) + b">",
    "allowed all, data-category then <script a=\"b\"  repeated": lambda n: b"<li data-category=x>" + fill(b'<script a="b" ', n) + b">",
    "allowed all, data-category then <script a=<script  rep.": lambda n: b"<li data-category=x>" + fill(b"<script a=<script ", n) + b">",
    "allowed all, data-category then whole scripts repeated": lambda n: b"<li data-category=x>" + fill(b'<script title="a>" src="/a.js"></script>', n),
}


def linear() -> bool:
    policy = load_policy("default")
    everything = frozenset(c.id for c in policy.categories)

    def streamed(rewriter: HTMLRewriter, data: bytes, chunk: int) -> None:
        stream = rewriter.stream(policy.required)
        step = chunk or len(data)
        for i in range(0, len(data), step):
            stream.feed(data[i : i + step])
        stream.close()

    def whole(rewriter: HTMLRewriter, data: bytes) -> None:
        rewriter.rewrite(everything, data, head=HEAD, body_end=BODY_END)

    # A new rewriter for each run, made before the clock starts: each input, (make, run).
    cases: dict[str, tuple[Callable[[int], bytes], Callable[[HTMLRewriter, bytes], None]]] = {
        name: (make, lambda rewriter, data, chunk=chunk: streamed(rewriter, data, chunk)) for name, (make, chunk) in REPRODUCTIONS.items()
    }
    cases |= {name: (make, whole) for name, make in FAST_REPRODUCTIONS.items()}
    ok = True
    print(f"{'input':55} {'64 KB':>9} {'256 KB':>9} {'ratio':>6}  (target: ratio < 6, 64 KB < 0.25 s)")
    for name, (make, run) in cases.items():
        times = []
        for size in (64 * 1024, 256 * 1024):
            data = make(size)
            best = float("inf")
            for _ in range(5):
                rewriter = HTMLRewriter(policy)
                t = time.perf_counter()
                run(rewriter, data)
                best = min(best, time.perf_counter() - t)
            times.append(best)
        ratio = times[1] / times[0]
        good = ratio < 6 and times[0] < 0.25
        ok &= good
        print(f"{name:55} {times[0]:8.4f}s {times[1]:8.4f}s {ratio:6.2f}  {'OK' if good else 'OVER'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    linear()
    speed(args.runs, args.rounds)
    memory()


if __name__ == "__main__":
    main()

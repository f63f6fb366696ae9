"""The crawl: pages breadth first, each visited in fresh browser contexts (a fresh visitor, after
"reject non-essential", after "accept all"), everything they request and store recorded."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urlsplit

from consentmw.core.api import SCAN_HEADER
from consentmw.core.errors import ConfigError
from consentmw.core.policy import Policy, load_policy

from .browser import CHROMIUM_FLAGS, ScanError, find_chromium, offline_flags
from .classify import Classifier
from .report import ACCEPTED, BEFORE_CONSENT, FRESH, PASSES, REFUSED, Cookie, Page, Pass, Report, Request, StorageKey
from .sites import host_of, is_web_url, site_of

DEFAULT_PREFIX = "/_consent"
CHOICES = {REFUSED: {"accept": "necessary"}, ACCEPTED: {"accept": "all"}}
QUIET = 0.3  # seconds without a request in flight after "load": the page has settled
SETTLE_MAX = 5.0  # ... or this long after "load", for pages that poll or stream
MAX_REQUESTS = 2000  # per pass; a page that polls forever is cut off, and the report says so
MAX_URL = 500
# Links to these are downloads, not pages.
NOT_PAGES = (".pdf", ".zip", ".gz", ".tgz", ".dmg", ".exe", ".msi", ".apk", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".mp4", ".mp3", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".hwp")

# Notes who wrote a cookie through document.cookie, in every frame, before any page script runs.
COOKIE_WRITES = """(() => {
  const d = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  if (!d || !d.set || window.__consentmwScanCookies) return;
  const written = [];
  Object.defineProperty(window, "__consentmwScanCookies", {value: written});
  Object.defineProperty(Document.prototype, "cookie", {
    configurable: true, enumerable: d.enumerable, get: d.get,
    set(value) { try { written.push(String(value).split(";", 1)[0].split("=", 1)[0].trim()); } catch (e) {} d.set.call(this, value); },
  });
})()"""
# A frame's localStorage keys and document.cookie writes; for the page itself also its title and
# links (one round trip).
FRAME_STATE = """(page) => {
  const keys = [];
  try { for (let i = 0; i < localStorage.length; i++) keys.push(localStorage.key(i)); } catch (e) {}
  const state = {origin: location.origin, keys, cookies: window.__consentmwScanCookies || []};
  if (page) {
    state.title = document.title;
    state.links = Array.from(document.querySelectorAll("a[href], area[href]"), e => e.href).filter(h => typeof h === "string");
  }
  return state;
}"""


@dataclass(frozen=True)
class ScanOptions:
    url: str
    pages: int = 10
    same_site_only: bool = False  # leave out pages whose address ends on another site after redirects
    timeout: float = 30.0  # seconds for one page to load
    browser: str | None = None
    offline: bool = False  # requests to other sites fail in the browser instead of leaving the machine
    policy: str | None = None  # classify with this policy instead of the site's own
    delay: float = 0.1  # seconds between two page loads: one visitor browsing, not a load test


@dataclass
class _Visit:
    """One pass's page in flight: what the browser reports while it loads."""

    requests: list[Any] = field(default_factory=list)
    statuses: dict[Any, int] = field(default_factory=dict)
    failures: dict[Any, str] = field(default_factory=dict)
    in_flight: int = 0
    last_change: float = field(default_factory=time.monotonic)

    def started(self, request: Any) -> None:
        if len(self.requests) < MAX_REQUESTS and is_web_url(request.url):
            self.requests.append(request)
        self.in_flight += 1
        self.last_change = time.monotonic()

    def answered(self, response: Any) -> None:
        self.statuses[response.request] = response.status

    def finished(self, request: Any) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.last_change = time.monotonic()

    def failed(self, request: Any) -> None:
        self.failures[request] = request.failure or "failed"
        self.finished(request)


def scan(options: ScanOptions, on_page: Callable[[Page, int], None] | None = None) -> Report:
    """Scan the site at ``options.url``; ``on_page(page, queued)`` is called after each page."""
    start = urlsplit(options.url)
    if start.scheme not in ("http", "https") or not start.hostname:
        raise ScanError(f"{options.url!r} is not an http(s) address; give a page such as https://www.example.com/")
    if options.pages < 1:
        raise ScanError("--pages must be at least 1")
    if options.timeout <= 0:
        raise ScanError("--timeout must be a positive number of seconds")
    policy = _own_policy(options.policy) if options.policy else None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        executable = find_chromium(options.browser, playwright)
        args = list(CHROMIUM_FLAGS)
        if options.offline:
            site = site_of(start.hostname)
            args += offline_flags(sorted({start.hostname, site, f"*.{site}"}))
        browser = playwright.chromium.launch(executable_path=executable, args=args, timeout=options.timeout * 1000)
        try:
            return _Scan(playwright, browser, executable, options, policy).run(on_page)
        finally:
            browser.close()


def _own_policy(source: str) -> Policy:
    try:
        return load_policy(source)
    except ConfigError as exc:
        raise ScanError(f"--policy {source}: {exc}") from None


class _Scan:
    def __init__(self, playwright: Any, browser: Any, executable: str, options: ScanOptions, policy: Policy | None) -> None:
        self.playwright = playwright
        self.browser = browser
        self.options = options
        self.origin = _origin(options.url)
        self.site = site_of(urlsplit(options.url).hostname or "")
        self.timeout_ms = options.timeout * 1000
        self.api = playwright.request.new_context(timeout=self.timeout_ms)
        self.prefix: str | None = None
        self.spares: list[tuple[Any, Any]] = []  # contexts with a blank page, for the next passes
        self.site_policy: Policy | None = None
        self.policy_note: str | None = None
        self.classifier = Classifier(policy or load_policy("default"))
        self.given_policy = policy is not None
        self.last_load = 0.0
        self.report = Report(
            url=options.url,
            site=self.site,
            started_at=dt.datetime.now(dt.UTC),
            options={
                "pages": options.pages,
                "same_site_only": options.same_site_only,
                "timeout_s": options.timeout,
                "offline": options.offline,
                "policy": options.policy,
            },
            browser={"executable": executable, "version": browser.version},
            consentmw={"detected": False},
        )

    def run(self, on_page: Callable[[Page, int], None] | None) -> Report:
        try:
            self._detect(DEFAULT_PREFIX)
            queue: deque[tuple[str, int]] = deque([(urldefrag(self.options.url).url, 0)])
            seen = {queue[0][0]}
            while queue and len(self.report.pages) < self.options.pages:
                url, depth = queue.popleft()
                page, links = self._page(url, depth)
                if page is None:
                    continue
                self.report.pages.append(page)
                for link in links:
                    if link not in seen:
                        seen.add(link)
                        queue.append((link, depth + 1))
                if on_page is not None:
                    on_page(page, len(queue))
        finally:
            self.api.dispose()
            for context, _ in self.spares:
                _safe(context.close)
        self._finish()
        return self.report

    # -- consentmw ---------------------------------------------------------------------------

    def _detect(self, prefix: str) -> bool:
        """Whether the site answers consentmw's policy endpoint under ``prefix``; reads the policy."""
        try:
            response = self.api.get(self.origin + prefix + "/policy", fail_on_status_code=False)
            data = response.json() if response.ok else None
        except Exception:  # not JSON, or no answer: not a consentmw site (the page loads will say more)
            return False
        if not isinstance(data, dict) or not isinstance(data.get("categories"), list) or "version" not in data:
            return False
        self.prefix = prefix
        self.report.passes = PASSES
        self.report.consentmw = {"detected": True, "prefix": prefix, "policy_id": data.get("id"), "policy_version": data.get("version")}
        try:
            self.site_policy = _policy_from_public(data)
        except ConfigError as exc:
            self.policy_note = f"the site's policy could not be read ({exc}); classified with the default preset"
        if self.site_policy is not None and not self.given_policy:
            self.classifier = Classifier(self.site_policy)
        return True

    def _detect_banner(self, visit_requests: list[Request]) -> None:
        for r in visit_requests:
            path = urlsplit(r.url).path
            if r.resource_type == "script" and not r.third_party and path.endswith("/banner.js"):
                if self._detect(path[: -len("/banner.js")]):
                    return

    # -- one page, its passes ------------------------------------------------------------------

    def _page(self, url: str, depth: int) -> tuple[Page | None, list[str]]:
        page = Page(url=url, depth=depth)
        first = not self.report.pages
        # The passes of one page load side by side, in separate contexts; the first page's fresh
        # pass goes alone, as it tells whether the site has consentmw.
        links = self._passes(page, url, [FRESH] if first or self.prefix is None else list(PASSES))
        fresh = page.passes[FRESH]
        if page.final_url is not None and site_of(host_of(page.final_url)) != self.site:
            if self.options.same_site_only:
                return None, []
            self.report.notes.append(f"{url} leads to another site: {page.final_url}")
        if first and page.final_url is None:
            raise ScanError(f"the start page {url} could not be loaded: {fresh.error}")
        if first and self.prefix is None:
            self._detect_banner(fresh.requests)
            if self.prefix is None:
                self.report.notes.append(
                    "no consentmw consent API on this site (GET /_consent/policy, or a consentmw banner on the first page):"
                    " only the fresh-visitor pass was made"
                )
            else:  # classified before the site's policy was known: visit again with it
                page.passes.clear()
                self._passes(page, url, list(PASSES))
        elif first:
            self._passes(page, url, [REFUSED, ACCEPTED])
        return page, links

    def _passes(self, page: Page, url: str, names: list[str]) -> list[str]:
        """Load ``url`` once per pass, each in a fresh context; the fresh pass's links."""
        visits: list[tuple[Pass, Any, Any, _Visit]] = []
        links: list[str] = []
        try:
            for name in names:
                run = page.passes[name] = Pass(name)
                context, tab = self._fresh_tab()
                visits.append((run, context, tab, visit := _Visit()))
                if name in CHOICES:
                    run.error = self._choose(context, name)
                context.on("request", visit.started)
                context.on("response", visit.answered)
                context.on("requestfinished", visit.finished)
                context.on("requestfailed", visit.failed)
            loading = [v for v in visits if v[0].error is None]
            self._polite()
            responses: dict[str, Any] = {}
            for run, _, tab, _ in loading:
                try:
                    responses[run.name] = tab.goto(url, timeout=self.timeout_ms, wait_until="commit")
                except Exception as exc:  # Playwright's errors: timeouts, refused connections, downloads
                    run.error = _first_line(exc)
            for run, _, tab, _ in loading:
                if run.error is None:
                    try:
                        tab.wait_for_load_state("load", timeout=self.timeout_ms)
                    except Exception as exc:
                        run.error = _first_line(exc)
            self._settle(loading[0][2] if loading else None, [v[3] for v in loading], len(names))
            for run, context, tab, visit in loading:
                script_cookies, storage, state = self._frames(tab)
                if run.name == FRESH:
                    page.final_url = tab.url if tab.url.startswith(("http://", "https://")) else None  # not chrome-error://
                    response = responses.get(FRESH)
                    page.status = response.status if response is not None else None
                    page.title = state.get("title") or None
                    if page.final_url is not None:
                        links = self._links(state.get("links", ()))
                self._record(run, visit, context.cookies(), script_cookies, storage)
                if len(visit.requests) >= MAX_REQUESTS:
                    self.report.notes.append(f"{url} ({run.name}): more than {MAX_REQUESTS} requests; only the first {MAX_REQUESTS} are listed")
        finally:
            for _, context, _, _ in visits:
                _safe(context.close)
        return links

    def _choose(self, context: Any, name: str) -> str | None:
        """Make this context's visitor choose through the site's consent API, as the banner does."""
        try:
            for attempt in range(3):
                response = context.request.post(
                    self.origin + self.prefix,
                    data=json.dumps(CHOICES[name]),
                    # Marks the record as the scanner's: `consentmw log stats` leaves it out.
                    headers={"Content-Type": "application/json", "Origin": self.origin, SCAN_HEADER: "1"},
                    timeout=self.timeout_ms,
                    fail_on_status_code=False,
                )
                if response.status != 429 or attempt == 2:
                    break
                # The site's rate limit on consent posts (30 a minute from one address by default):
                # a scan of many pages posts two choices a page, so it waits as the site asks.
                retry = response.headers.get("retry-after", "")
                time.sleep(min(60, int(retry)) if retry.isascii() and retry.isdigit() else 2)
        except Exception as exc:
            return f"the consent API did not answer: {str(exc).splitlines()[0]}"
        if not response.ok:
            return f"the consent API refused the choice {CHOICES[name]}: HTTP {response.status} {response.text()[:200]}"
        return None

    def _polite(self) -> None:
        wait = self.last_load + self.options.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.last_load = time.monotonic()

    def _fresh_tab(self) -> tuple[Any, Any]:
        """A new browser context with a blank page: one made while the last page settled, else a new one."""
        return self.spares.pop() if self.spares else self._new_tab()

    def _new_tab(self) -> tuple[Any, Any]:
        context = self.browser.new_context()
        context.add_init_script(COOKIE_WRITES)
        return context, context.new_page()

    def _settle(self, tab: Any, visits: list[_Visit], next_passes: int) -> None:
        """Wait until no request has been in flight for QUIET in any of the passes (at most SETTLE_MAX)."""
        deadline = time.monotonic() + min(SETTLE_MAX, self.options.timeout)
        # Starting a page's renderer is the slowest step of a pass: the next page's start while
        # this one settles (the browser's events keep coming in meanwhile).
        while len(self.spares) < next_passes and len(self.report.pages) + 1 < self.options.pages:
            self.spares.append(self._new_tab())
        while tab is not None and time.monotonic() < deadline:
            now = time.monotonic()
            if all(v.in_flight == 0 and now - v.last_change >= QUIET for v in visits):
                return
            try:
                tab.wait_for_timeout(50)  # lets Playwright deliver the browser's events
            except Exception:
                return

    def _links(self, hrefs: Any) -> list[str]:
        links = []
        for href in hrefs:
            url = urldefrag(href).url
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.hostname and site_of(parts.hostname) == self.site:
                # consentmw's own pages (browser guides, opt-out) are not the site's to audit.
                own = self.prefix is not None and (parts.path == self.prefix or parts.path.startswith(self.prefix + "/"))
                if not own and not parts.path.lower().endswith(NOT_PAGES):
                    links.append(url)
        return list(dict.fromkeys(links))

    def _frames(self, tab: Any) -> tuple[set[str], list[tuple[str, str]], dict[str, Any]]:
        """Cookie names written by scripts and localStorage keys of every frame; the page's own state."""
        script_cookies: set[str] = set()
        storage: list[tuple[str, str]] = []
        page_state: dict[str, Any] = {}
        for frame in tab.frames:
            main = frame is tab.main_frame
            state = _safe(lambda: frame.evaluate(FRAME_STATE, main))
            if not state:
                continue
            if main:
                page_state = state
            script_cookies.update(state["cookies"])
            storage.extend((state["origin"], key) for key in state["keys"])
        return script_cookies, list(dict.fromkeys(storage)), page_state

    # -- recording and judging -----------------------------------------------------------------

    def _record(self, run: Pass, visit: _Visit, cookies: list[dict[str, Any]], script_cookies: set[str], storage: list[tuple[str, str]]) -> None:
        for request in visit.requests:
            url = request.url
            host = host_of(url)
            known = self.classifier.request(url, host)
            run.requests.append(
                Request(
                    url=url if len(url) <= MAX_URL else url[:MAX_URL] + "…",
                    host=host,
                    method=request.method,
                    resource_type=request.resource_type,
                    third_party=site_of(host) != self.site,
                    category=known.category if known else None,
                    entity=known.entity if known else None,
                    service=known.service if known else None,
                    status=visit.statuses.get(request),
                    failure=visit.failures.get(request),
                )
            )
        for c in cookies:
            domain = c["domain"]
            known = self.classifier.cookie(c["name"])
            expires = c.get("expires", -1)
            run.cookies.append(
                Cookie(
                    name=c["name"],
                    domain=domain,
                    path=c.get("path", "/"),
                    expires=expires if expires and expires > 0 else None,
                    third_party=site_of(domain.lstrip(".")) != self.site,
                    source="script" if c["name"] in script_cookies else "set-cookie",
                    http_only=c.get("httpOnly", False),
                    secure=c.get("secure", False),
                    same_site=c.get("sameSite"),
                    category=known.category if known else None,
                    entity=known.entity if known else None,
                )
            )
        for origin, key in storage:
            known = self.classifier.cookie(key)
            run.local_storage.append(
                StorageKey(origin=origin, key=key, third_party=site_of(host_of(origin)) != self.site, category=known.category if known else None)
            )
        self._judge(run)

    def _judge(self, run: Pass) -> None:
        for r in run.requests:
            r.violation = self._violation(run.name, r.category)
            if r.violation is None and r.category is None and r.entity is None and r.third_party:
                r.violation = "unknown third-party host: not in the catalog, so nothing says what it is for"
        for c in run.cookies:
            c.violation = self._violation(run.name, c.category)
        for s in run.local_storage:
            s.violation = self._violation(run.name, s.category)

    def _violation(self, pass_name: str, category: str | None) -> str | None:
        if category is None:
            return None
        if not self.classifier.declared(category):
            return f"its purpose ({category[1:]}) is no category of the policy, so no visitor can have consented to it"
        if self.classifier.optional(category) and pass_name in BEFORE_CONSENT:
            return f"{category} before any choice" if pass_name == FRESH else f"{category} after the visitor refused it"
        return None

    def _finish(self) -> None:
        report = self.report
        report.finished_at = dt.datetime.now(dt.UTC)
        policy = report.policy = self.classifier.policy
        report.consentmw["classified_with"] = (
            f"--policy {self.options.policy}" if self.given_policy else "the site's policy" if self.site_policy is not None and policy is self.site_policy else "the default preset"
        )
        if self.policy_note:
            report.notes.append(self.policy_note)
        if self.options.offline:
            report.notes.append("offline: requests to other sites were made by the browser but answered 'not found' on this machine")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:  # a frame that went away, a page that navigated: nothing to read there
        return None


def _policy_from_public(data: dict[str, Any]) -> Policy:
    """A Policy from what GET /_consent/policy shows: enough to classify with (categories, their
    cookie patterns and services, the aliases)."""
    from consentmw.core.trackers import catalog

    trackers = {t.id for t in catalog()}
    categories = []
    for c in data["categories"]:
        category = {key: c[key] for key in ("id", "required", "name", "description", "cookies") if c.get(key) not in (None, {}) or key in ("id", "name")}
        # The site's own services are published without their `match` patterns: only the
        # catalog's can be recognised from here.
        category["services"] = [s for s in c.get("services") or () if s.get("id") in trackers]
        categories.append(category)
    ids = {c.get("id") for c in categories}
    aliases = {name: target for name, target in (data.get("aliases") or {}).items() if target in ids and name not in ids}
    return Policy({"version": str(data["version"]), "categories": categories, "aliases": aliases})

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qs, quote, urlsplit

from starlette.datastructures import Headers

from consentmw.core.consent import Consent, ConsentReader
from consentmw.core.cookie import ConsentCodec, cookie_header, domain_matches, expire_headers, new_consent_id, request_cookies
from consentmw.core.errors import ErrorCode
from consentmw.core.http import Request, Response, json_response, redirect, response
from consentmw.core.inline import NOTICE_SWAP, banner_policy, banner_state, languages  # noqa: F401  (NOTICE_SWAP: importable from here as before)
from consentmw.core.languages import choose, match
from consentmw.core.policy import Policy
from consentmw.core.ratelimit import RateLimit, retry_after
from consentmw.core.store import ConsentRecord, ConsentStore, truncate_ip

logger = logging.getLogger("consentmw")

Handler = Callable[["ConsentAPI", Request], Awaitable[Response]]

JSON_METHODS = {"banner", "settings", "api"}
# Sent by `consentmw scan` on its consent posts: the record is kept, marked scan, and `log stats`
# leaves it out. Any client can send it, so it marks only a record that starts a consent id (no
# valid consent cookie came with it): it cannot take a visitor's later choices out of the counts.
SCAN_HEADER = "consentmw-scan"
STATIC_TYPES = {"banner.js": "text/javascript; charset=utf-8", "banner.css": "text/css; charset=utf-8"}
# A return URL must be a local path: no scheme, no "//host", no backslash tricks, no control characters.
# \Z, not $: "$" also matches before a final newline, which let "/ok\n" through to the log.
SAFE_NEXT = re.compile(r"^/(?![/\\])[^\\\x00-\x20\x7f]*\Z")
# A root path (a Mount, uvicorn --root-path, SCRIPT_NAME, which gunicorn takes from a proxy header)
# goes into markup: it must be a path on this site, never "//host", a scheme or a backslash.
SAFE_ROOT = re.compile(r"(?:/(?![/\\])[^\\\x00-\x1f\x7f]*)?\Z")
# What may not reach a header or the log from a path: ASCII and C1 controls, any Unicode whitespace
# (NEL, NBSP, U+2028...), and the invisible format characters that reorder or hide text when read.
CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# What consentmw answers itself is data, its banner files or its own small pages: nothing there may be
# framed, sniffed into another type, or load from elsewhere. A page that needs more sets its own CSP.
SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
)


class Recorded(NamedTuple):
    consent_id: str
    allowed: frozenset[str]
    cookies: list[bytes]  # Set-Cookie values: stale consent cookies' expiries, the consent cookie, refused cookies' expiries


class ApiError(Exception):
    def __init__(self, code: ErrorCode, **detail: Any) -> None:
        super().__init__(code.name)
        self.code = code
        self.detail = detail


def error_response(code: ErrorCode, **detail: Any) -> Response:
    headers = {"Cache-Control": "no-store"}
    if code is ErrorCode.METHOD_NOT_ALLOWED and "allow" in detail:
        headers["Allow"] = detail["allow"]
    if code is ErrorCode.TOO_MANY_POSTS:
        headers["Retry-After"] = str(detail["retry_after"])
    body = {"error": code.name.lower(), "message": code.message, **detail}
    return json_response(body, status=code.status, headers=headers)


def mounted_prefix(root_path: str, prefix: str) -> str:
    """The prefix as the browser sees it under the app's root path; percent-encoded, since a
    Mount("/{tenant}") puts what the visitor typed there, and the result goes into markup and headers."""
    return quote(root_path.rstrip("/"), safe="/") + prefix


def secured(response: Response) -> Response:
    present = {key for key, _ in response.headers}
    response.headers += [(key, value) for key, value in SECURITY_HEADERS if key not in present]
    return response


def static_dir() -> Path:
    packaged = resources.files("consentmw").joinpath("static")
    if packaged.is_dir():
        return Path(str(packaged))
    # A source checkout or editable install: the top-level static/ beside the package.
    return Path(__file__).resolve().parents[2] / "static"


class StaticAsset:
    def __init__(self, path: Path, media_type: str) -> None:
        self.body = path.read_bytes()
        if path.suffix == ".js":
            # Comments on lines of their own are for readers of the source, not for every visitor's download.
            self.body = b"".join(line for line in self.body.splitlines(keepends=True) if not line.lstrip().startswith(b"//"))
        self.media_type = media_type
        self.version = hashlib.sha256(self.body).hexdigest()[:12]
        self.etag = f'"{self.version}"'


class ConsentAPI:
    """The endpoints under the prefix; built once per middleware."""

    def __init__(
        self,
        *,
        policy: Policy,
        reader: ConsentReader,
        codec: ConsentCodec,
        store: ConsentStore,
        prefix: str,
        cookie_name: str,
        cookie_domain: str | None,
        cookie_path: str,
        cookie_secure: bool | None,
        max_body_size: int,
        trusted_origins: frozenset[str],
        store_timeout: float,
        # Consent posts a minute per client address; None: no limit.
        rate_limit: int | None = None,
        # More endpoints under the prefix (the pages: consentmw.core.pages.ROUTES), by path below it.
        pages: Mapping[str, Handler] = {},
    ) -> None:
        self.policy = policy
        self.reader = reader
        self.codec = codec
        self.store = store
        self.prefix = prefix
        self.cookie_name = cookie_name
        self.cookie_domain = cookie_domain
        self.cookie_path = cookie_path
        self.cookie_secure = cookie_secure
        self.max_body_size = max_body_size
        self.trusted_origins = trusted_origins
        self.store_timeout = store_timeout
        self.warned_root_path = False
        self.rate_limit = RateLimit(rate_limit) if rate_limit else None
        self.warned_no_client = False
        # What an answer that tells the visitor's state depends on: the region header too, when one is trusted.
        self.region_vary: tuple[str, ...] = tuple(v.decode("latin-1") for v in reader.source.vary)
        self.vary = ", ".join(("Cookie", *self.region_vary))
        folder = static_dir()
        self.assets = {name: StaticAsset(folder / name, media) for name, media in STATIC_TYPES.items()}
        public = json.dumps(policy.public(), ensure_ascii=False, separators=(",", ":")).encode()
        self.policy_json = public
        self.policy_etag = '"' + hashlib.sha256(public).hexdigest()[:16] + '"'
        self.routes: dict[str, Handler] = {
            "": ConsentAPI.consent_endpoint,
            "/": ConsentAPI.consent_endpoint,
            "/policy": ConsentAPI.policy_endpoint,
            "/banner.js": ConsentAPI.static_endpoint,
            "/banner.css": ConsentAPI.static_endpoint,
        }
        self.routes.update(pages)

    def route(self, path: str) -> str | None:
        """The path under the prefix ("" for the prefix itself), or None when the request is the app's.
        `path` is below the app's root path (a Mount, uvicorn --root-path, a WSGI SCRIPT_NAME)."""
        prefix = self.prefix
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return path[len(prefix) :]
        return None

    def root_path(self, root_path: str) -> str:
        """The root path the server reports if it is an absolute path on this site, else "": one
        like "//evil.example" would send the banner's and the form's requests to another host."""
        if SAFE_ROOT.match(root_path):
            return root_path
        if not self.warned_root_path:
            self.warned_root_path = True
            logger.warning(
                "consentmw: the server reported the root path (SCRIPT_NAME) %r, which is not a path on this site; "
                "consentmw's links and the banner use %r without it. A proxy header (SCRIPT_NAME, X-Forwarded-Prefix, "
                "X-Script-Name) may be passing on what a client sent. Said once per app.",
                root_path[:200],
                self.prefix,
            )
        return ""

    def base(self, request: Request) -> str:
        """The prefix as the browser reaches it for this request."""
        root = self.root_path(request.root_path)
        return mounted_prefix(root, self.prefix) if root else self.prefix

    def site_root(self, request: Request) -> str:
        root = quote(self.root_path(request.root_path).rstrip("/"), safe="/") + "/"
        return root if SAFE_NEXT.match(root) else "/"

    async def respond(self, request: Request) -> Response:
        """The answer to a request under the prefix. Adapters send it as it is."""
        route = self.route(request.path)
        handler = self.routes.get(route) if route is not None else None
        try:
            if handler is None:
                raise ApiError(ErrorCode.NOT_FOUND, path=request.root_path + request.path)
            answer = await handler(self, request)
        except ApiError as exc:
            answer = error_response(exc.code, **exc.detail)
        return secured(answer)

    # -- endpoints -----------------------------------------------------------------------------

    async def consent_endpoint(self, request: Request) -> Response:
        method = request.method
        if method in ("GET", "HEAD"):
            return json_response(self.visitor_state(self.consent(request)), headers={"Cache-Control": "no-store", "Vary": self.vary})
        if method != "POST":
            raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, allow="GET, HEAD, POST")
        media_type, body = self.posted_body(request)
        if media_type == "application/json":
            allowed, record_method, page = self.parse_json_choice(body, request)
            recorded = await self.record_choice(request, allowed, record_method, page=page, lang=posted_lang(body))
            answer = json_response(self.state_after(request, recorded), headers={"Cache-Control": "no-store"})
        else:
            form = self.parse_form(body)
            allowed = self.parse_form_choice(form, request)
            target = self.return_path(request, form)
            # The log keeps the page's path, as for JSON posts: a query string may carry personal data.
            recorded = await self.record_choice(request, allowed, "form", page=target.split("?", 1)[0], lang=form.get("lang", [None])[-1])
            answer = redirect(target, headers={"Cache-Control": "no-store"})
        answer.headers += [(b"set-cookie", header) for header in recorded.cookies]
        return answer

    async def policy_endpoint(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, allow="GET, HEAD")
        requested = request.query_params.get("lang")
        if requested is None:
            return self.cached(request, self.policy_json, "application/json", self.policy_etag, "public, max-age=300")
        # ?lang=: the policy as the banner reads it, in that language (or the page's, or the browser's:
        # a tag not offered counts as none), with the languages to switch to.
        choice = choose(self.policy, requested[:64] or None, request.header.get("accept-language"))
        body = json.dumps(
            {"lang": choice.lang, "languages": languages(self.policy), "policy": banner_policy(self.policy, choice.lang)},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        answer = self.cached(request, body, "application/json", etag, "public, max-age=300")
        if choice.by_accept_language:
            answer.headers.append((b"vary", b"Accept-Language"))
        return answer

    async def static_endpoint(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(ErrorCode.METHOD_NOT_ALLOWED, allow="GET, HEAD")
        asset = self.assets[request.path.rsplit("/", 1)[1]]
        # Pages link the assets with ?v=<hash>, so a changed file is a new URL.
        return self.cached(request, asset.body, asset.media_type, asset.etag, "public, max-age=86400")

    def cached(self, request: Request, body: bytes, media_type: str, etag: str, cache_control: str) -> Response:
        headers = {"ETag": etag, "Cache-Control": cache_control}
        if_none_match = request.header.get("if-none-match", "")
        if etag in {tag.strip() for tag in if_none_match.split(",")}:
            return response(b"", status=304, headers=headers)
        return response(body, media_type=media_type, headers=headers)

    # -- what page handlers use ----------------------------------------------------------------

    def visitor_state(self, consent: Consent) -> dict[str, Any]:
        """What the banner is told of the visitor (GET /_consent, and the state inlined in pages):
        Consent.as_dict(), and for an undecided visitor in an opt-out region the banner's keys that
        the notice uses instead (its texts, and "Do Not Sell or Share" for "necessary")."""
        return banner_state(consent)

    def consent(self, request: Request) -> Consent:
        return Consent(self.reader, request.headers, self.reader.locator(request.headers, request.client, request.native))

    def same_origin(self, request: Request) -> bool:
        headers = request.header
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        if origin is not None and origin in self.trusted_origins:
            return True
        if site == "same-origin":
            # The browser itself says so (no page can set Sec-Fetch-Site), whatever a reverse proxy
            # did to Host; Origin is compared with Host only for browsers that do not send it.
            return True
        if site is not None and site != "none":
            return False
        if origin is not None:
            return origin != "null" and urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
        referer = headers.get("referer")
        if referer is not None and site is None:
            return urlsplit(referer).netloc.lower() == headers.get("host", "").lower()
        # Nothing says where the post came from. Every current browser sends Origin with a POST
        # (fetch or form, "null" when a referrer policy hides it); one that sends nothing is an old
        # browser, where a page elsewhere could post for its visitor, or a script, which can send
        # any header anyway. Refused: the choice is not recorded, the visitor stays undecided.
        return False

    def posted_body(self, request: Request) -> tuple[str, bytes]:
        """The media type and body of a same-origin post of JSON or a form, at most max_body_size bytes."""
        if not self.same_origin(request):
            raise ApiError(ErrorCode.CROSS_SITE)
        self.limit_rate(request)
        headers = request.header
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in ("application/json", "application/x-www-form-urlencoded"):
            raise ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, content_type=media_type)
        limit = self.max_body_size
        declared = headers.get("content-length")
        # isascii(): str.isdigit() takes "²" (a latin-1 byte a server may pass on) for a digit; int() does not.
        if declared is not None and (not (declared.isascii() and declared.isdigit()) or int(declared) > limit):
            raise ApiError(ErrorCode.BODY_TOO_LARGE, limit=limit)
        if request.body is None:
            raise ApiError(ErrorCode.MALFORMED_FORM if media_type != "application/json" else ErrorCode.MALFORMED_JSON, reason="client disconnected")
        if len(request.body) > limit:
            raise ApiError(ErrorCode.BODY_TOO_LARGE, limit=limit)
        return media_type, request.body

    def limit_rate(self, request: Request) -> None:
        """Refuses a post beyond the client's share (429, with Retry-After): each post is a record."""
        limit = self.rate_limit
        if limit is None:
            return
        if not request.client:
            if not self.warned_no_client:
                self.warned_no_client = True
                logger.warning(
                    "consentmw: the server reports no client address for consent posts, so rate_limit cannot apply "
                    "(a Unix socket? have the server take the address from the proxy). Said once per app."
                )
            return
        wait = limit.take(request.client)
        if wait > 0:
            raise ApiError(ErrorCode.TOO_MANY_POSTS, retry_after=retry_after(wait))

    def parse_form(self, body: bytes) -> dict[str, list[str]]:
        try:
            return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(ErrorCode.MALFORMED_FORM) from None

    def parse_json_choice(self, body: bytes, request: Request | None = None) -> tuple[set[str], str, str | None]:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise ApiError(ErrorCode.MALFORMED_JSON) from None
        if not isinstance(data, dict):
            raise ApiError(ErrorCode.INVALID_BODY)
        method = data.get("method", "api")
        if not isinstance(method, str) or method not in JSON_METHODS:  # a list or object is unhashable
            method = "api"
        page = data.get("page")
        if isinstance(page, str) and CONTROL_OR_SPACE.search(page):
            raise ApiError(ErrorCode.INVALID_PAGE, reason=unsafe_character(page))
        page = page.split("?", 1)[0] if isinstance(page, str) and SAFE_NEXT.match(page) and utf8(page) else None
        if "accept" in data and "choices" in data:
            raise ApiError(ErrorCode.INVALID_BODY)  # which of the two the visitor meant is unknown
        if "accept" in data:
            return self.accept(data["accept"], request), method, page
        choices = data.get("choices")
        if not isinstance(choices, dict):
            raise ApiError(ErrorCode.INVALID_BODY)
        given: dict[str, bool] = {}
        for name, value in choices.items():
            if not isinstance(value, bool):
                raise ApiError(ErrorCode.INVALID_CHOICE, category=name)
            category = self.category(name)
            if value is False and category in self.policy.required:
                raise ApiError(ErrorCode.REQUIRED_CATEGORY, category=name)
            # An alias and its category (or two aliases) answered differently: neither answer is the choice.
            if given.setdefault(category, value) is not value:
                raise ApiError(ErrorCode.CONFLICTING_CHOICES, category=category)
        return {c for c, value in given.items() if value and c in self.policy.optional}, method, page

    def parse_form_choice(self, form: dict[str, list[str]], request: Request | None = None) -> set[str]:
        accept = form.get("accept", ["custom"])[-1]
        if accept != "custom":
            return self.accept(accept, request)
        return {c for c in map(self.category, form.get("category", [])) if c in self.policy.optional}

    def accept(self, value: object, request: Request | None = None) -> set[str]:
        if value == "all":
            return set(self.policy.optional)
        if value == "necessary":
            return set()
        if value == "do-not-sell":
            # "Do Not Sell or Share My Personal Information": the categories GPC covers are refused and
            # everything else stays as it is now (chosen, or allowed by an opt-out region's rule).
            now = self.consent(request).allowed if request is not None else frozenset(self.policy.optional)
            return (set(now) & set(self.policy.optional)) - self.policy.gpc_refuses
        raise ApiError(ErrorCode.INVALID_ACCEPT)

    def category(self, name: str) -> str:
        category = self.policy.category_for(name) if isinstance(name, str) else None
        if category is None:
            raise ApiError(ErrorCode.UNKNOWN_CATEGORY, category=name, known=[c.id for c in self.policy.categories])
        return category

    def return_path(self, request: Request, form: dict[str, list[str]]) -> str:
        target = form.get("next", [""])[-1]
        if target:
            # Only a tampered form sends anything else: refused, so nothing is recorded.
            if CONTROL_OR_SPACE.search(target):
                raise ApiError(ErrorCode.INVALID_NEXT, reason=unsafe_character(target))
            if not SAFE_NEXT.match(target):
                raise ApiError(ErrorCode.INVALID_NEXT, reason="not a path on this site (it must start with one '/', with no '\\')")
            return target
        referer = self.own_referer(request.header)
        if referer is not None:
            return referer.path + (f"?{referer.query}" if referer.query else "")
        return self.site_root(request)

    @staticmethod
    def own_referer(headers: Headers) -> SplitResult | None:
        """The Referer, when it is a page of this site whose path is safe to go back to and to log."""
        referer = urlsplit(headers.get("referer", ""))
        same_site = headers.get("sec-fetch-site") == "same-origin" or referer.netloc.lower() == headers.get("host", "").lower()
        return referer if same_site and referer.path and SAFE_NEXT.match(referer.path) else None

    def record_language(self, request: Request, posted: object) -> str:
        """The language the visitor read when choosing: the one the banner or form says it showed,
        when it is offered, else the one this request would get."""
        found = match(posted, self.policy.languages) if isinstance(posted, str) else None
        return found or choose(self.policy, None, request.header.get("accept-language")).lang

    async def record_choice(
        self, request: Request, allowed: set[str], method: str, *, page: str | None = None, lang: object = None
    ) -> Recorded:
        """Log the choice, then return the Set-Cookie headers that carry it out; ApiError if the log fails."""
        previous = self.consent(request)
        consent_id = previous.id or new_consent_id()
        headers = request.header
        if page is None:
            # Held to the return URL's rule: no control characters (PostgreSQL text cannot hold NUL).
            referer = self.own_referer(headers)
            page = referer.path if referer is not None else ""
        record = ConsentRecord(
            consent_id=consent_id,
            policy_id=self.policy.id,
            policy_version=self.policy.version,
            choices={c.id: c.required or c.id in allowed for c in self.policy.categories},
            method=method,
            path=page[:512],
            ip=truncate_ip(request.client),
            user_agent=user_agent_family(headers.get("user-agent", "")),
            # Where the visitor chose, and the rule that applied there before they did.
            region=previous.region,
            mode=previous.mode,
            language=self.record_language(request, lang),
            scan=headers.get(SCAN_HEADER) == "1" and previous.id is None,
        )
        try:
            await asyncio.wait_for(self.store.record(record), timeout=self.store_timeout)
        except Exception:
            logger.exception("consentmw: could not write the consent log; the visitor's choice was not applied")
            raise ApiError(ErrorCode.STORE_UNAVAILABLE) from None
        secure = self.secure(request)
        # Expiries first: a browser that takes a stale cookie and the new one for the same cookie
        # (RFC 6265 on the bare domain) then ends with the new one.
        cookies = self.stale_consent_cookies(request, secure)
        cookies.append(
            cookie_header(
                self.cookie_name,
                self.codec.dumps(allowed, consent_id),
                max_age=self.policy.max_age,
                path=self.cookie_path,
                domain=self.cookie_domain,
                secure=secure,
            )
        )
        refused = set(self.policy.optional) - allowed
        cookies += expire_headers(self.policy, request_cookies(request.headers), refused, secure, request.host)
        return Recorded(consent_id, frozenset(allowed), cookies)

    def stale_consent_cookies(self, request: Request, secure: bool) -> list[bytes]:
        """Expiries for consent cookies the new one will not replace, as far as the server can name
        them: the host-only cookie a visitor kept from before cookie_domain was set. Domains and paths
        used before are not known here; reading the newest cookie keeps those from counting."""
        if not self.cookie_domain or not self.reader.cookie_values(request.headers):
            return []
        host = request.header.get("host", "").split(":", 1)[0].lower()
        if not domain_matches(host, self.cookie_domain):
            return []  # the browser refuses the Domain cookie here: the host-only one is all the visitor has
        return [cookie_header(self.cookie_name, "", max_age=0, path=self.cookie_path, secure=secure)]

    def state_after(self, request: Request, recorded: Recorded) -> dict[str, Any]:
        """What GET /_consent will answer once the visitor's browser has stored the new cookie."""
        consent = self.consent(request)
        effective = recorded.allowed | self.policy.required
        if consent.gpc:
            effective -= self.policy.gpc_refuses
        return {
            "decided": True,
            "choices": {c.id: c.id in effective for c in self.policy.categories},
            "gpc": consent.gpc,
            "policy_version": self.policy.version,
            "id": recorded.consent_id,
            "region": consent.region,
            "mode": consent.mode,
        }

    def secure(self, request: Request) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else request.scheme == "https"


def posted_lang(body: bytes) -> object:
    """The "lang" of a JSON choice the API has already parsed and accepted, or None."""
    data = json.loads(body)
    return data.get("lang")


def unsafe_character(text: str) -> str:
    """Names the first character that keeps a path out of headers and the log."""
    found = CONTROL_OR_SPACE.search(text)
    where = f"U+{ord(found.group()):04X} at position {found.start()}: " if found else ""
    return where + "control characters and whitespace are not allowed"


def utf8(text: str) -> bool:
    """Whether UTF-8 (and so every store) can hold the text: a JSON string may carry lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def user_agent_family(user_agent: str) -> str:
    try:
        from consentmw.core.browsers import family
    except ImportError:  # the browser guides are optional at this layer
        return ""
    return family(user_agent[:512])

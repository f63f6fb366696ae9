"""The framework-neutral core: one per middleware, whatever the server speaks. It works out the
configuration once (policy, signer, store, endpoints, page rewriting); the adapters in
``consentmw.asgi``, ``consentmw.wsgi`` and ``consentmw.django`` only translate requests and
responses to and from it."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.datastructures import Secret

from consentmw.core import pages
from consentmw.core.api import ConsentAPI, error_response, mounted_prefix, secured
from consentmw.core.consent import Consent, ConsentReader
from consentmw.core.cookie import ConsentCodec, secret_list
from consentmw.core.errors import ConfigError, ErrorCode
from consentmw.core.filtering import ResponseFilter
from consentmw.core.http import Request, Response
from consentmw.core.policy import Policy, load_policy
from consentmw.core.regions import RegionCallable, RegionSource
from consentmw.core.rewriting import PageRequest, PageRewriting
from consentmw.core.store import ConsentStore, open_store
from consentmw.core.sync import LoopThread


logger = logging.getLogger("consentmw")


def controller_not_set(policy: Policy) -> str:
    name = f"the {policy.id!r} policy" if policy.id else "the policy"
    return (
        f"consentmw: {name} names no controller, so the banner and pages speak for no one: visitors are not told who "
        "decides about their data or whom to ask. Run `consentmw init` to write a policy in your site's name, "
        "or add \"controller\": {\"name\": {...}, \"contact\": \"...\"} to it."
    )


class ConsentCore:
    def __init__(
        self,
        *,
        # Required and never generated: a random key per process would forget every choice on restart.
        secret_key: str | Secret | Iterable[str | Secret],
        # A preset name, a path to a policy JSON file, a mapping or a Policy.
        policy: str | os.PathLike[str] | Mapping[str, Any] | Policy = "default",
        # The consent log; an embedded SQLite file unless told otherwise.
        store: str | ConsentStore | None = None,
        # All of consentmw's endpoints live under this path.
        prefix: str = "/_consent",
        cookie_name: str = "consentmw",
        # None: host-only, the safest scope; set ".example.com" to share consent across subdomains.
        cookie_domain: str | None = None,
        cookie_path: str = "/",
        # None: Secure when the request came over https.
        cookie_secure: bool | None = None,
        # Consent posts are tiny; anything larger is refused before it is read whole.
        max_body_size: int = 8192,
        # Origins (e.g. "https://shop.example.com") allowed to post consent besides the site itself.
        trusted_origins: Iterable[str] = (),
        # A slow consent log answers 503 after this many seconds instead of holding the visitor.
        store_timeout: float = 5.0,
        # Consent posts a minute from one client address (an IPv6 /64), each a record in the log; more
        # get 429 with Retry-After. None or 0: no limit (a proxy in front that limits them itself).
        rate_limit: int | None = 30,
        # Verified consent cookies kept in memory, so most requests skip the HMAC check.
        cache_size: int = 4096,
        # Path prefixes (or a callable on the path) whose HTML gets no banner; trackers are still blocked.
        banner_exclude: Iterable[str] | Callable[[str], bool] = (),
        # The header(s) a CDN in front of the site sets to the visitor's country ("CF-IPCountry"), or a
        # (country, subdivision) pair. None trusts no header: every visitor gets opt-in.
        region_header: str | Sequence[str] | None = None,
        # Or a callable given a RegionRequest, returning an ISO 3166 code or None (a GeoIP lookup).
        region: RegionCallable | None = None,
        # Where the app puts its CSP nonce (the ASGI scope or its state, the WSGI environ, an attribute
        # of Django's request); the response's Content-Security-Policy header is the fallback.
        csp_nonce_key: str = "csp_nonce",
    ) -> None:
        keys = secret_list(secret_key)
        if any(len(k) < 16 for k in keys):
            warnings.warn("consentmw: secret_key is shorter than 16 characters; use a long random value", stacklevel=3)
        if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
            raise ConfigError(f"prefix must start with '/' and not end with one, like '/_consent' (got {prefix!r})")
        if rate_limit is not None and (isinstance(rate_limit, bool) or not isinstance(rate_limit, int) or rate_limit < 0):
            raise ConfigError(f"rate_limit must be a number of posts a minute per client, or None for no limit (got {rate_limit!r})")
        if not 256 <= max_body_size <= 1 << 20:
            raise ConfigError("max_body_size must be between 256 bytes and 1 MiB")
        # Browsers drop "__Host-"/"__Secure-" cookies that lack Secure (and, for __Host-, that name a
        # domain or a path other than "/"): refuse such a set-up now rather than lose every choice.
        if cookie_name.startswith(("__Host-", "__Secure-")):
            if cookie_secure is False:
                raise ConfigError(f"cookie_name {cookie_name!r} needs Secure cookies; drop cookie_secure=False")
            cookie_secure = True
        if cookie_name.startswith("__Host-") and (cookie_domain is not None or cookie_path != "/"):
            raise ConfigError(f"cookie_name {cookie_name!r} allows neither cookie_domain nor a cookie_path other than '/'")
        self.policy = load_policy(policy)
        if not self.policy.data.get("controller"):
            # The visitor is told who holds their data on consentmw's pages; without it they are not.
            logger.warning(controller_not_set(self.policy))
        self.regions = RegionSource(region_header, region)
        if self.policy.regions.opt_out and not self.regions.configured:
            warnings.warn(
                "consentmw: the policy has opt-out regions, but no region_header or region= says where a visitor is, "
                "so every visitor gets opt-in (docs/regions.md)",
                stacklevel=3,
            )
        self.prefix = prefix
        self.max_body_size = max_body_size
        self.store_timeout = store_timeout
        self.codec = ConsentCodec(keys, self.policy, cache_size=cache_size)
        self.reader = ConsentReader(self.policy, self.codec, cookie_name, self.regions)
        self.store = open_store(store, timeout=store_timeout)
        self.api = ConsentAPI(
            policy=self.policy,
            reader=self.reader,
            codec=self.codec,
            store=self.store,
            prefix=prefix,
            cookie_name=cookie_name,
            cookie_domain=cookie_domain,
            cookie_path=cookie_path,
            cookie_secure=cookie_secure,
            max_body_size=max_body_size,
            trusted_origins=frozenset(trusted_origins),
            store_timeout=store_timeout,
            rate_limit=rate_limit,
            pages=pages.ROUTES,
        )
        self.asset_versions = {name: asset.version for name, asset in self.api.assets.items()}
        self.banner_exclude = banner_exclude if callable(banner_exclude) else tuple(banner_exclude)
        self.csp_nonce_key = csp_nonce_key
        self.html = PageRewriting(
            self.policy,
            prefix=prefix,
            asset_versions=self.asset_versions,
            banner_exclude=self.banner_exclude,
            csp_nonce_key=csp_nonce_key,
            region_vary=self.regions.vary,
        )
        self._mounted: dict[str, PageRewriting] = {}
        self.loop_thread = LoopThread()  # started by the first sync request under the prefix

    def consent(
        self,
        headers: list[tuple[bytes, bytes]],
        client: str | None = None,
        request: Any = None,
        all_headers: Callable[[], list[tuple[bytes, bytes]]] | None = None,
    ) -> Consent:
        """The visitor's consent, read lazily from the request headers (lower-case names); a region=
        callable is given all the headers (``all_headers()`` when ``headers`` holds only those consent
        reads), the client's address and the adapter's own request."""
        return Consent(self.reader, headers, self.reader.locator(all_headers or headers, client, request))

    def is_api(self, path: str) -> bool:
        """Whether consentmw answers this path (below the root path) itself."""
        # `in` costs what startswith did; the exact test runs only for paths that hold the prefix.
        return self.prefix in path and self.api.route(path) is not None

    def respond_sync(self, request: Request) -> Response:
        """The API's answer for a sync caller (a WSGI server's thread): run on the core's own event
        loop, where the consent log lives for sync callers (consentmw.core.sync)."""
        try:
            # The API answers 503 itself once store_timeout has passed; this only bounds a stuck loop.
            return self.loop_thread.run(self.api.respond(request), self.store_timeout + 1.0)
        except TimeoutError:
            return secured(error_response(ErrorCode.STORE_UNAVAILABLE))

    async def close(self) -> None:
        await self.store.close()

    def close_sync(self) -> None:
        """Closes the consent log from sync code (a WSGI app's shutdown), on the loop it lives on."""
        if self.loop_thread.started:
            self.loop_thread.run(self.store.close(), self.store_timeout + 1.0)
            self.loop_thread.stop()

    def filter_response(
        self, request: PageRequest, consent: Consent, status: int, headers: list[tuple[bytes, bytes]], root_path: str = ""
    ) -> ResponseFilter:
        if not root_path:  # an app at the site's root: nothing to check or strip
            return ResponseFilter(self.html, consent, request, status, headers)
        root = self.api.root_path(root_path)
        if root != root_path and request.path.startswith(root_path):
            # The page's path as the browser sees it is unknown; the no-JS form returns to it below the root.
            request = request._replace(path=request.path[len(root_path) :] or "/")
        return ResponseFilter(self.page_rewriting(root), consent, request, status, headers)

    def page_rewriting(self, root_path: str) -> PageRewriting:
        """The page rewriting for an app under a root path (a Mount, uvicorn --root-path, SCRIPT_NAME):
        the banner's URLs and the form's action must carry it. A Mount("/{tenant}") makes root paths
        many; only a few are kept."""
        if not root_path:
            return self.html
        html = self._mounted.get(root_path)
        if html is None:
            base = self.html
            html = PageRewriting(
                self.policy,
                prefix=mounted_prefix(root_path, self.prefix),
                asset_versions=self.asset_versions,
                banner_exclude=self.banner_exclude,
                csp_nonce_key=base.csp_nonce_key,
                rewriter=base.rewriter,
                region_vary=base.region_vary,
            )
            if len(self._mounted) < 32:
                self._mounted[root_path] = html
        return html

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policy={self.policy.id or self.policy.version!r}, prefix={self.prefix!r})"

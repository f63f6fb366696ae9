from __future__ import annotations

import os
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.datastructures import Secret
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentmw.core.api import ConsentAPI, mounted_prefix
from consentmw.core.consent import Consent, ConsentReader
from consentmw.core.cookie import ConsentCodec, secret_list
from consentmw.core.errors import ConfigError
from consentmw.core.policy import Policy, load_policy
from consentmw.core.response import CONTENT_TYPE, HTML_VERDICTS, SET_COOKIE, ResponseFilter, html_verdict
from consentmw.core.rewriting import PageRewriting
from consentmw.core.store import ConsentStore, open_store

new_consent = object.__new__


class ConsentMiddleware:
    def __init__(
        self,
        app: ASGIApp,
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
        # Verified consent cookies kept in memory, so most requests skip the HMAC check.
        cache_size: int = 4096,
        # Path prefixes (or a callable on the path) whose HTML gets no banner; trackers are still blocked.
        banner_exclude: Iterable[str] | Callable[[str], bool] = (),
        # Where the app puts its CSP nonce in the scope (also read from scope["state"]); the
        # response's Content-Security-Policy header is the fallback.
        csp_nonce_key: str = "csp_nonce",
    ) -> None:
        self.app = app
        keys = secret_list(secret_key)
        if any(len(k) < 16 for k in keys):
            warnings.warn("consentmw: secret_key is shorter than 16 characters; use a long random value", stacklevel=2)
        if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
            raise ConfigError(f"prefix must start with '/' and not end with one, like '/_consent' (got {prefix!r})")
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
        self.prefix = prefix
        self.codec = ConsentCodec(keys, self.policy, cache_size=cache_size)
        self.reader = ConsentReader(self.policy, self.codec, cookie_name)
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
        )
        self.asset_versions = {name: asset.version for name, asset in self.api.assets.items()}
        self.banner_exclude = banner_exclude if callable(banner_exclude) else tuple(banner_exclude)
        self.html = PageRewriting(
            self.policy,
            prefix=prefix,
            asset_versions=self.asset_versions,
            banner_exclude=self.banner_exclude,
            csp_nonce_key=csp_nonce_key,
        )
        self._mounted: dict[str, PageRewriting] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self.closing_store(send)
            await self.app(scope, receive, send)
            return
        # `in` costs what startswith did; the exact test runs only for paths that hold the prefix.
        if self.prefix in scope["path"] and self.api.route(scope) is not None:
            await self.api(scope, receive, send)
            return
        # The hot path: every request of the site comes through here. Each step below was measured
        # (bench/bench_core.py); a Python-level call or closure cell costs as much as the work.
        consent = new_consent(Consent)  # Consent.__init__'s work, without its call
        consent._reader = self.reader
        consent._headers = scope["headers"]
        consent._resolved = False
        app_scope = scope.copy()  # a copy, so the server's scope is never changed
        app_scope["consent"] = consent
        response: ResponseFilter | None = None

        def send_filtered(message: Message) -> Awaitable[None]:
            # Most responses (no cookies, not HTML) pass with one header scan and no allocation;
            # returning the awaitable instead of awaiting it spares a coroutine per message.
            nonlocal response
            if response is None:
                if message["type"] != "http.response.start":
                    return send(message)
                for key, value in message.get("headers") or ():
                    # Cookies to check, or an HTML body to rewrite.
                    # (A content type already judged not HTML is settled by the lookup alone.)
                    if key in SET_COOKIE or (key in CONTENT_TYPE and HTML_VERDICTS.get(value, True) and html_verdict(value)):
                        break
                else:
                    return send(message)
                html = self.html if not app_scope.get("root_path") else self.mounted_html(app_scope["root_path"])
                response = ResponseFilter(self.policy, consent, send, app_scope, html)
            return response.send(message)

        await self.app(app_scope, receive, send_filtered)

    def mounted_html(self, root_path: str) -> PageRewriting:
        """The page rewriting for an app under a root path (a Mount, uvicorn --root-path): the banner's
        URLs and the form's action must carry it. A Mount("/{tenant}") makes root paths many; only a
        few are kept."""
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
            )
            if len(self._mounted) < 32:
                self._mounted[root_path] = html
        return html

    def closing_store(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.store.close()
            await send(message)

        return lifespan_send

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policy={self.policy.id or self.policy.version!r}, prefix={self.prefix!r})"

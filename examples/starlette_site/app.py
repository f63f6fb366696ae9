"""The Starlette example: a small site with GA4 and Naver Analytics on its pages.

    CONSENTMW_SECRET_KEY=... uvicorn examples.starlette_site.app:app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consentmw import ConsentMiddleware
from consentmw.core.store import ConsentStore

from ..common import Pages, chosen_theme, secret_key, site_policy, store_url, theme_cookie

POLICY = site_policy("naver-cloud-en")
PAGES = Pages(title="consentmw example · Starlette", lang="en", policy=POLICY)


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGES.home(request.scope["consent"], theme=chosen_theme(request.cookies)))


async def preferences(request: Request) -> HTMLResponse:
    requested = request.query_params.get("theme")
    theme = chosen_theme(request.cookies, requested)
    chosen = requested == theme
    response = HTMLResponse(PAGES.preferences(request.scope["consent"], theme=theme, chosen=chosen))
    if chosen:
        # Set whatever the visitor chose; consentmw drops it on the way out unless its category is allowed.
        response.set_cookie(**theme_cookie(theme))
    return response


def create_app(*, secret_key: str, store: str | ConsentStore | None = None) -> Starlette:
    app = Starlette(routes=[Route("/", home), Route("/preferences", preferences)])
    app.add_middleware(ConsentMiddleware, secret_key=secret_key, policy=POLICY, store=store)
    return app


app = create_app(secret_key=secret_key(), store=store_url())
